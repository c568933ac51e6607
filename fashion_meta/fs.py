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


def listing(spark: SparkSession, folder: str) -> list[tuple[str, int, int]]:
    """(path relative to ``folder``, bytes, modification time in ms) of every file under it, recursively, sorted."""
    fs, hpath = _fs_and_path(spark, folder)
    if not fs.exists(hpath):
        return []
    base = str(fs.makeQualified(hpath).toString()).rstrip("/") + "/"
    files = fs.listFiles(hpath, True)
    out = []
    while files.hasNext():
        status = files.next()
        out.append((str(status.getPath().toString()).removeprefix(base), int(status.getLen()),
                    int(status.getModificationTime())))
    return sorted(out)


def size(spark: SparkSession, path: str) -> int:
    """Total bytes under ``path`` (a file or a folder)."""
    fs, hpath = _fs_and_path(spark, path)
    return int(fs.getContentSummary(hpath).getLength())


def qualified(spark: SparkSession, path: str) -> str:
    """The fully qualified URI of ``path`` (file:/..., s3a://...)."""
    fs, hpath = _fs_and_path(spark, path)
    return str(fs.makeQualified(hpath).toString())


def write_text(spark: SparkSession, path: str, text: str) -> None:
    """Write ``text`` (UTF-8) to the file ``path``, replacing it."""
    fs, hpath = _fs_and_path(spark, path)
    stream = fs.create(hpath, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


def read_text(spark: SparkSession, path: str) -> str:
    """The UTF-8 text of the file ``path``."""
    fs, hpath = _fs_and_path(spark, path)
    jvm = spark.sparkContext._jvm
    stream = fs.open(hpath)
    try:
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def delete(spark: SparkSession, path: str) -> None:
    """Remove ``path`` (recursively) if it exists."""
    fs, hpath = _fs_and_path(spark, path)
    if fs.exists(hpath):
        fs.delete(hpath, True)


def replace_folder(spark: SparkSession, staging: str, target: str) -> None:
    """Move the complete folder ``staging`` to ``target``, replacing what was there.

    The old folder is first renamed aside, so a reader finds either the old complete folder or the new one (on a
    local or HDFS file system the rename is atomic; on object stores it is a copy, see the README).
    """
    fs, hstaging = _fs_and_path(spark, staging)
    _, htarget = _fs_and_path(spark, target)
    fs.mkdirs(htarget.getParent())
    old = None
    if fs.exists(htarget):
        _, old = _fs_and_path(spark, f"{target.rstrip('/')}.old-{staging.rsplit('-', 1)[-1]}")
        if not fs.rename(htarget, old):
            raise OSError(f"could not move {target} aside")
    if not fs.rename(hstaging, htarget):
        if old is not None:
            fs.rename(old, htarget)
        raise OSError(f"could not move {staging} to {target}")
    if old is not None:
        fs.delete(old, True)
