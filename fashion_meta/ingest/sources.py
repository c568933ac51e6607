"""Find input files, check their headers, and read them as numbered rows of string fields.

Reading rules (documented in the README):
- CSV is read line by line (LF, CRLF or CR); a record is one physical line, so a quoted field that spans lines
  splits into pieces that are rejected with "wrong field count" (the Kaggle files never do this).
- Header names are matched case-insensitively after trimming spaces, quotes and a UTF-8 BOM. A missing
  required column stops the job (exit 2); a missing optional column is filled with nulls; extra columns are
  ignored. Both are logged.
- Every data row gets its physical line number (header = line 1) and its raw text, made valid UTF-8.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fashion_meta import fs
from fashion_meta.errors import InputError

log = logging.getLogger(__name__)

SUFFIXES = (".csv", ".csv.gz", ".parquet")
_QUOTED = r'"(?:[^"]|"")*"'


@dataclass(frozen=True)
class SourceFile:
    """One input file: its logical name (articles, ...), path, format and header mapping."""

    name: str
    path: str
    fmt: str  # "csv" or "parquet"
    header: tuple[str, ...]  # column names as found in the file
    mapping: dict[str, str]  # expected column -> column as found (only those present)

    @property
    def file_name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


def find_source(spark: SparkSession, input_dir: str, name: str) -> str | None:
    """Path of ``<name>.csv|.csv.gz|.parquet`` (file or folder) in ``input_dir``, or None."""
    names = set(fs.list_names(spark, input_dir))
    found = [name + s for s in SUFFIXES if name + s in names]
    if len(found) > 1:
        raise InputError(f"{input_dir}: several files for '{name}' ({', '.join(found)}); keep one")
    return f"{input_dir.rstrip('/')}/{found[0]}" if found else None


def _clean_name(raw: str) -> str:
    return raw.strip().lstrip("\ufeff").strip().strip('"').strip()


def read_header(spark: SparkSession, path: str) -> tuple[str, tuple[str, ...]]:
    """(format, column names) of a CSV or Parquet source; InputError when it has no usable header."""
    file_name = path.rstrip("/").rsplit("/", 1)[-1]
    if path.endswith(".parquet"):
        allow_nanosecond_timestamps(spark)
        try:
            return "parquet", tuple(spark.read.parquet(path).columns)
        except Exception as exc:  # Spark raises AnalysisException and friends with long messages
            raise InputError(f"{file_name}: not a readable Parquet file ({str(exc).splitlines()[0][:200]})") from None
    if fs.size(spark, path) == 0:
        raise InputError(f"{file_name}: file is empty (no header line)")
    try:
        first = spark.read.text(path).select(F.make_valid_utf8("value").alias("value")).first()
    except Exception as exc:  # e.g. a .csv.gz that is not gzip: Hadoop's codec fails on the first bytes
        raise InputError(f"{file_name}: not a readable text file ({java_reason(exc)})") from None
    if first is None or not first["value"].strip():
        raise InputError(f"{file_name}: first line is empty (no header line)")
    import csv

    return "csv", tuple(_clean_name(c) for c in next(csv.reader([first["value"]])))


def java_reason(exc: BaseException) -> str:
    """The innermost Java cause of a Spark failure in one short line (e.g. 'EOFException: Unexpected end of ...')."""
    causes = re.findall(r"(?m)^(?:Caused by: |: )?((?:java|org)\.[\w.$]*(?:Exception|Error)\b(?::[^\n]*)?)$", str(exc))
    text = causes[-1] if causes else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text.rsplit(".", 1)[-1] if ": " not in text else text.split(": ", 1)[0].rsplit(".", 1)[-1] + ": " + text.split(": ", 1)[1][:160]


def unreadable_file(exc: BaseException, opened: list[SourceFile]) -> str | None:
    """A one-line message when ``exc`` is a failure to read one of the ``opened`` files to its end, else None."""
    text = str(exc)
    markers = ("EOFException", "Unexpected end of input stream", "not in gzip format", "ZipException",
               "FAILED_READ_FILE", "ParquetDecodingException", "CORRUPTED")
    if not any(m in text for m in markers):
        return None
    named = [s.file_name for s in opened if s.path in text or s.file_name in text]
    where = named[0] if named else ", ".join(s.file_name for s in opened)
    return f"{where}: file cannot be read to its end ({java_reason(exc)})"


def printable(text: str) -> str:
    """``text`` safe for a one-line message: control and other non-printable characters shown as '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def match_header(
    file_name: str, header: tuple[str, ...], expected: tuple[str, ...], required: tuple[str, ...]
) -> dict[str, str]:
    """Map expected columns to header names; InputError naming the first missing required column."""
    by_lower: dict[str, str] = {}
    for col in header:
        if col.lower() in by_lower:
            raise InputError(f"{file_name}: column '{printable(col)}' appears twice in the header")
        by_lower[col.lower()] = col
    missing = [c for c in required if c.lower() not in by_lower]
    if missing:
        raise InputError(
            f"{file_name}: missing required column '{missing[0]}' (header has: {printable(', '.join(header))[:300]})"
        )
    mapping = {c: by_lower[c.lower()] for c in expected if c.lower() in by_lower}
    optional_missing = [c for c in expected if c not in mapping]
    if optional_missing:
        log.warning("%s: optional columns absent, filled with nulls: %s", file_name, ", ".join(optional_missing))
    extra = [c for c in header if c.lower() not in {e.lower() for e in expected}]
    if extra:
        log.warning("%s: extra columns ignored: %s", file_name, ", ".join(extra))
    return mapping


def open_source(
    spark: SparkSession, name: str, path: str, expected: tuple[str, ...], required: tuple[str, ...]
) -> SourceFile:
    """Check a source's header against the expected columns (nothing is read beyond the header)."""
    fmt, header = read_header(spark, path)
    file_name = path.rstrip("/").rsplit("/", 1)[-1]
    return SourceFile(name, path, fmt, header, match_header(file_name, header, expected, required))


def _numbered_lines(spark: SparkSession, path: str) -> DataFrame:
    """(row_number, value) for every physical line, numbered from 1 in file order, without Python UDFs."""
    lines = spark.read.text(path).select(
        "value",
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_mid"),
    )
    # Rows of one split are contiguous and ordered in one partition: number within splits, then offset each
    # split by the sizes of the splits before it (one row per split, so computed on the driver).
    blocks = lines.groupBy("_block").agg(F.count(F.lit(1)).alias("_n"), F.min("_mid").alias("_mid0")).collect()
    offsets, total = [], 0
    for block in sorted(blocks, key=lambda r: r["_block"]):
        offsets.append((block["_block"], block["_mid0"], total))
        total += block["_n"]
    schema = "_block long, _mid0 long, _offset long"
    table = spark.createDataFrame(offsets, schema) if offsets else spark.createDataFrame([], schema)
    return lines.join(F.broadcast(table), on="_block", how="inner").select(
        (F.col("_offset") + F.col("_mid") - F.col("_mid0") + 1).alias("row_number"), "value"
    )


def read_rows(spark: SparkSession, source: SourceFile, expected: tuple[str, ...]) -> DataFrame:
    """Numbered data rows: row_number, raw, structural reasons, and one nullable string per expected column."""
    if source.fmt == "parquet":
        return _read_parquet_rows(spark, source, expected)
    lines = _numbered_lines(spark, source.path).where(F.col("row_number") > 1)
    ddl = ", ".join(f"`c{i}` STRING" for i in range(len(source.header)))
    valid_utf8 = F.is_valid_utf8("value")
    text = F.make_valid_utf8("value")
    n_fields = F.size(F.split(F.regexp_replace(text, _QUOTED, ""), ",", -1))
    parsed = F.from_csv(text, ddl, {"quote": '"', "escape": '"', "mode": "PERMISSIVE", "maxCharsPerColumn": "-1"})
    reasons = [
        F.when(~valid_utf8, F.lit("invalid UTF-8 bytes")),
        F.when(F.trim(text) == "", F.lit("blank line")),
        F.when(
            (F.trim(text) != "") & (F.regexp_count(text, F.lit('"')) % 2 == 1), F.lit("unbalanced quotes")
        ),
        F.when(
            (F.trim(text) != "") & (n_fields != len(source.header)),
            F.concat(F.lit(f"wrong field count: expected {len(source.header)}, got "), n_fields.cast("string")),
        ),
    ]
    index = {col: i for i, col in enumerate(source.header)}
    columns = [
        (
            F.nullif(F.trim(F.col("_p")[f"c{index[source.mapping[c]]}"]), F.lit(""))
            if c in source.mapping
            else F.lit(None).cast("string")
        ).alias(c)
        for c in expected
    ]
    return (
        lines.select("row_number", text.alias("raw"), parsed.alias("_p"), F.array_compact(F.array(*reasons)).alias("_reasons"))
        .select("row_number", "raw", "_reasons", *columns)
    )


def allow_nanosecond_timestamps(spark: SparkSession) -> None:
    """Let Spark read pandas' default nanosecond Parquet timestamps (as longs; ``_as_string`` turns them to dates)."""
    spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")


def _as_string(col: Column, dtype: T.DataType, name: str) -> Column:
    if name == "t_dat" and isinstance(dtype, T.LongType):
        # nanoseconds since the epoch (pandas' default); small numbers are not dates and stay as digits
        return F.when(col > F.lit(10**17), F.date_format(F.timestamp_micros(F.floor(col / 1000)), "yyyy-MM-dd")).otherwise(
            col.cast("string")
        )
    if isinstance(dtype, (T.DateType, T.TimestampType, T.TimestampNTZType)):
        return F.date_format(col, "yyyy-MM-dd")
    if name == "article_id" and isinstance(dtype, (T.IntegerType, T.LongType)):
        return F.lpad(col.cast("string"), 10, "0")  # Parquet copies of Kaggle data lose the leading zero
    if isinstance(dtype, (T.FloatType, T.DoubleType)) and name in ("age", "sales_channel_id", "product_code"):
        return F.when(col == F.floor(col), col.cast("long").cast("string")).otherwise(col.cast("string"))
    return col.cast("string")


def _read_parquet_rows(spark: SparkSession, source: SourceFile, expected: tuple[str, ...]) -> DataFrame:
    allow_nanosecond_timestamps(spark)
    df = spark.read.parquet(source.path)
    types = {f.name: f.dataType for f in df.schema.fields}
    columns = [
        (
            F.nullif(F.trim(_as_string(F.col(f"`{source.mapping[c]}`"), types[source.mapping[c]], c)), F.lit(""))
            if c in source.mapping
            else F.lit(None).cast("string")
        ).alias(c)
        for c in expected
    ]
    return df.select(
        (F.col("_metadata.row_index") + 1).alias("row_number"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])).alias("raw"),
        F.array().cast("array<string>").alias("_reasons"),
        *columns,
    )
