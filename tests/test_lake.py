"""lake.ensure_table after a creation that was killed before its first commit."""

from __future__ import annotations

import pytest
from pyspark.sql import types as T

from fashion_meta import lake

pytestmark = pytest.mark.spark

SCHEMA = T.StructType([T.StructField("id", T.LongType()), T.StructField("name", T.StringType())])


def _aborted_log(path):
    """What a nightly killed inside DeltaTable.createIfNotExists left (seen in a kill/resume test)."""
    log = path / "_delta_log"
    (log / "_staged_commits").mkdir(parents=True)
    (log / ".00000000000000000000.json.63b840c4-e5d1-43a8-a4a3-1e6e4a1dfdf2.tmp").write_text('{"protocol":{}}\n')
    (log / "..00000000000000000000.json.63b840c4-e5d1-43a8-a4a3-1e6e4a1dfdf2.tmp.crc").write_text("crc")


def test_ensure_table_recovers_from_an_aborted_creation(spark, tmp_path):
    path = tmp_path / "t"
    _aborted_log(path)
    assert not lake.table_exists(spark, str(path))
    lake.ensure_table(spark, str(path), SCHEMA)
    assert lake.table_exists(spark, str(path))
    assert lake.read_table(spark, str(path)).schema.fieldNames() == ["id", "name"]
    spark.createDataFrame([(1, "a"), (2, None)], SCHEMA).write.format("delta").mode("append").save(str(path))
    lake.ensure_table(spark, str(path), SCHEMA)  # an existing table is left as it is
    assert lake.read_table(spark, str(path)).count() == 2


def test_ensure_table_recovers_from_a_creation_killed_before_any_file(spark, tmp_path):
    """A nightly killed inside the creation left an empty _delta_log folder (seen in a kill/resume test run)."""
    path = tmp_path / "t"
    (path / "_delta_log").mkdir(parents=True)
    assert not lake.table_exists(spark, str(path))
    lake.ensure_table(spark, str(path), SCHEMA)
    assert lake.read_table(spark, str(path)).schema.fieldNames() == ["id", "name"]
    lake.ensure_table(spark, str(tmp_path / "fresh"), SCHEMA)  # no folder at all: created as before
    assert lake.table_exists(spark, str(tmp_path / "fresh"))


def test_ensure_table_never_removes_data_files(spark, tmp_path):
    path = tmp_path / "t"
    _aborted_log(path)
    data = path / "part-00000.parquet"
    data.write_bytes(b"PAR1")
    with pytest.raises(Exception, match="DELTA|Delta"):
        lake.ensure_table(spark, str(path), SCHEMA)
    assert data.is_file() and (path / "_delta_log").is_dir()
