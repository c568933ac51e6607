"""The one SparkSession factory: Delta configured, UTC, local defaults that never override spark-submit."""

from __future__ import annotations

import gc
import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DELTA_VERSION = "4.4.0"
DELTA_PACKAGE = f"io.delta:delta-spark_4.2_2.13:{DELTA_VERSION}"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
JARS_ENV = "FASHION_META_JARS_DIR"
LOG4J_FILE = Path(__file__).with_name("log4j2.properties")

# Settings every session gets unless the submitter set them (spark-submit --conf wins).
_SESSION_DEFAULTS = {
    "spark.sql.extensions": DELTA_EXTENSION,
    "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    "spark.sql.session.timeZone": "UTC",
    # Tables Feast and delta-rs read must not use deletion vectors (DESIGN.md, Lake layout).
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    # Plain Parquet files (task files, exports) must carry UTC microsecond timestamps readable by pyarrow/DuckDB.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # The SQL status store keeps the plan text and metrics of the last N queries in the driver (default 1000); a
    # tasks stage runs about 135 queries with wide feature plans, ~0.5 MB each (benchmarks/RESULTS.md).
    "spark.sql.ui.retainedExecutions": "100",
}


class SparkSetupError(RuntimeError):
    """Spark cannot be started as configured (e.g. Delta jars missing)."""


def default_jars_dir() -> Path:
    """Where the set-up puts Delta's jars: $FASHION_META_JARS_DIR or <project>/.cache/jars."""
    return Path(os.environ.get(JARS_ENV) or PROJECT_ROOT / ".cache" / "jars")


def delta_jars(jars_dir: str | Path | None = None) -> list[Path]:
    """The cached Delta jars (empty if the set-up has not fetched them)."""
    folder = Path(jars_dir) if jars_dir else default_jars_dir()
    return sorted(folder.glob("*.jar")) if folder.is_dir() else []


def _has_delta(jars: list[Path]) -> bool:
    return any("delta-spark" in p.name for p in jars)


def fetch_delta_jars(jars_dir: str | Path | None = None) -> list[Path]:
    """Resolve Delta's jars from Maven Central once (through Spark's Ivy) into a project-local folder."""
    folder = Path(jars_dir) if jars_dir else default_jars_dir()
    existing = delta_jars(folder)
    if _has_delta(existing):
        return existing
    from pyspark.sql import SparkSession

    ivy_dir = folder.parent / "ivy"
    spark = (
        SparkSession.builder.master("local[1]")
        .appName("fashion-meta-fetch-jars")
        .config("spark.jars.packages", DELTA_PACKAGE)
        .config("spark.jars.ivy", str(ivy_dir))
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    spark.stop()
    resolved = sorted((ivy_dir / "jars").glob("*.jar"))
    if not resolved:
        raise SparkSetupError(f"Ivy resolved no jars for {DELTA_PACKAGE} into {ivy_dir}")
    folder.mkdir(parents=True, exist_ok=True)
    shipped = _spark_shipped_artifacts()
    for jar in resolved:
        # Ivy also resolves older copies of libraries that pyspark already ships (hadoop, parquet, log4j):
        # keep only what Spark lacks, so the driver never sees two versions of one class.
        if _artifact_name(jar.name.split("_", 1)[-1]) not in shipped:
            shutil.copy2(jar, folder / jar.name)
    return delta_jars(folder)


def _artifact_name(jar_file: str) -> str:
    """'parquet-hadoop-1.16.0.jar' -> 'parquet-hadoop'."""
    return re.sub(r"-\d[\w.\-]*\.jar$", "", jar_file)


def _spark_shipped_artifacts() -> set[str]:
    import pyspark

    return {_artifact_name(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def _submitted() -> bool:
    """True when this Python driver was launched by spark-submit (the JVM already exists)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(
    app_name: str = "fashion-meta",
    *,
    master: str = "local[*]",
    shuffle_partitions: int = 4,
    driver_memory: str = "4g",
    jars_dir: str | Path | None = None,
    ui: bool = True,
    extra: dict[str, str] | None = None,
) -> "SparkSession":
    """Return the active session, or build one with Delta and UTC; spark-submit settings are kept."""
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active

    settings = dict(_SESSION_DEFAULTS)
    settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
    settings.update(extra or {})
    builder = SparkSession.builder.appName(app_name)

    if _submitted():
        # The JVM was started by spark-submit: its --conf values are system properties; only fill gaps.
        SparkContext._ensure_initialized()
        given = dict(SparkConf().getAll())
        for key, value in settings.items():
            if key not in given:
                builder = builder.config(key, value)
        if DELTA_EXTENSION not in given.get("spark.sql.extensions", DELTA_EXTENSION):
            log.warning("spark.sql.extensions was set by the submitter without Delta's extension")
        return builder.getOrCreate()

    # Python workers must run this interpreter (the one with the project's packages), not whatever
    # `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jars = delta_jars(jars_dir)
    if not _has_delta(jars):
        raise SparkSetupError(
            f"Delta jars not found in {Path(jars_dir) if jars_dir else default_jars_dir()}; "
            "run `python -m fashion_meta.bootstrap setup` once (needs Maven Central), "
            f"or set {JARS_ENV} to a folder holding {DELTA_PACKAGE} and its dependencies"
        )
    builder = (
        builder.master(os.environ.get("SPARK_MASTER", master))
        .config("spark.jars", ",".join(str(p) for p in jars))
        .config("spark.driver.memory", driver_memory)
        .config("spark.ui.enabled", "true" if ui else "false")
        .config("spark.driver.extraJavaOptions", f"-Duser.timezone=UTC -Dlog4j.configurationFile={LOG4J_FILE.as_uri()}")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.ui.showConsoleProgress", "false")
        # Delta rebuilds table state with 50 tasks by default; on a laptop-sized machine that is mostly overhead.
        .config("spark.databricks.delta.snapshotPartitions", str(max(1, shuffle_partitions)))
    )
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def spark_from_config(cfg, app_name: str = "fashion-meta") -> "SparkSession":
    """``get_spark`` with the [spark] section of a Config."""
    section = cfg["spark"]
    return get_spark(
        app_name,
        master=section["master"],
        shuffle_partitions=section["shuffle_partitions"],
        driver_memory=section["driver_memory"],
        jars_dir=section["jars_dir"] or None,
    )


def temp_views(spark: "SparkSession") -> set[str]:
    """Names of the session's temporary views."""
    return {t.name for t in spark.catalog.listTables() if t.isTemporary}


@contextmanager
def dropping_new_temp_views(spark: "SparkSession") -> Iterator[None]:
    """Drop the temporary views created inside the block when it ends (also on failure).

    Feast's Spark offline store registers a view per entity frame and per feature view and never drops them; each pins
    its frame's plan in the driver. Measured after one tasks stage of a default-shop evaluation lake: 18 views held
    1.34 GB of the 1.58 GB driver heap (benchmarks/RESULTS.md)."""
    before = temp_views(spark)
    try:
        yield
    finally:
        made = sorted(temp_views(spark) - before)
        for name in made:
            spark.catalog.dropTempView(name)
        if made:
            log.debug("dropped %d temporary view(s): %s", len(made), ", ".join(made))


def release_memory(spark: "SparkSession", keep_cache: bool = False) -> tuple[int, int] | None:
    """Free what a finished unit of work left in the driver: cached data, temporary views (Feast registers its entity
    frames as views), Delta's cache of table logs and snapshots, and Python objects in reference cycles (py4j
    releases a JVM object only when its Python proxy is collected). Returns the driver JVM's heap in use (MiB) before
    and after, each after a full GC, or None where the JVM cannot be reached (e.g. Spark Connect).
    ``keep_cache=True`` leaves cached data and temporary views (for a pause inside a job that still uses them).

    For a long run of many independent jobs in one process (the evaluation's seeds and K's). Measured after one tasks
    stage of a default-shop K lake (benchmarks/RESULTS.md, 2026-12-06): driver heap 1,585 MiB; Python's collection
    freed 11-44 MiB; the rest is freed by either dropping the stage's temporary views (Feast's entity frames) or
    ``DeltaLog.clearCache()``, whichever runs first (1,335 and 1,372 MiB in two orders), so the two hold the same
    objects. The tasks stage now drops its views itself (``dropping_new_temp_views``); this function is the second
    line. Spark's SQL status store, kept at 100 queries by the session defaults, is the other long-run holder."""
    try:
        jvm = spark.sparkContext._jvm
        runtime = jvm.java.lang.Runtime.getRuntime()
    except Exception:  # noqa: BLE001 - no JVM behind this session
        jvm = runtime = None

    def used() -> int | None:
        if runtime is None:
            return None
        jvm.java.lang.System.gc()
        return int((runtime.totalMemory() - runtime.freeMemory()) // (1 << 20))

    before = used()
    if not keep_cache:
        spark.catalog.clearCache()
        for table in spark.catalog.listTables():
            if table.isTemporary:
                spark.catalog.dropTempView(table.name)
    if jvm is not None:
        try:
            jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
        except Exception as exc:  # noqa: BLE001 - without Delta (or another version) there is nothing to clear
            log.debug("DeltaLog.clearCache not available: %s", exc)
    gc.collect()  # py4j releases a Java object when its Python proxy is collected
    return None if before is None else (before, used())
