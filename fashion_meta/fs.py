"""File-system access through Hadoop's FileSystem, so local paths and cluster URIs work alike."""

from __future__ import annotations

from pyspark.sql import SparkSession


def _fs_and_path(spark: SparkSession, path: str):
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def exists(spark: SparkSession, path: str) -> bool:
    """True when a file or folder exists at ``path``."""
    fs, hpath = _fs_and_path(spark, path)
    return bool(fs.exists(hpath))


def list_names(spark: SparkSession, folder: str) -> list[str]:
    """Names of the entries directly under ``folder`` (empty when it does not exist)."""
    fs, hpath = _fs_and_path(spark, folder)
    if not fs.exists(hpath):
        return []
    return sorted(str(status.getPath().getName()) for status in fs.listStatus(hpath))


def size(spark: SparkSession, path: str) -> int:
    """Total bytes under ``path`` (a file or a folder)."""
    fs, hpath = _fs_and_path(spark, path)
    return int(fs.getContentSummary(hpath).getLength())


def qualified(spark: SparkSession, path: str) -> str:
    """The fully qualified URI of ``path`` (file:/..., s3a://...)."""
    fs, hpath = _fs_and_path(spark, path)
    return str(fs.makeQualified(hpath).toString())
