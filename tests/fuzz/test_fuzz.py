"""Bad input end to end: seeded corruptions of a tiny H&M shop through ingest + features, and through nightly.

What one case is:
- a *row case* is one clean data row of one file replaced by the physical line(s) a corruption makes of it (one
  or two field corruptions and/or one structural one: see ``mutator.py``). Row cases are batched: one input
  folder holds ``FUZZ_BATCH`` of them on distinct rows, each file in a tolerated schema-drift layout, and goes
  through the real ``fashion-meta ingest`` and ``fashion-meta features`` (in-process ``main``). Every physical
  line is then accounted for: read = written + rejected per file, each reject names its line and its raw text,
  each corrupted line is rejected with its expected reason or kept, every unmutated line is written with its
  values (its purchase may only be rejected as "unknown article_id" when its article was rejected);
- a *nightly case* is a row case that goes through every nightly stage: ``FUZZ_NIGHTLY`` nightly runs (default
  1), each on the tiny shop with 12 row cases in random drift layouts, then the same per-line accounting plus
  features, recommendations and the export manifest;
- a *file case* is one whole-file corruption (missing file or column, renamed column, empty file, wrong
  delimiter, garbage Parquet/gzip, ...) that must stop ingest with exit 2, one line naming the problem, no
  traceback and nothing written to bronze.

``FASHION_META_FUZZ_CASES`` (row cases, default 200), ``FASHION_META_FUZZ_BATCH`` (row cases per ingest,
default 100), ``FASHION_META_FUZZ_NIGHTLY`` (nightly runs of 12 row cases each, default 1) and
``FASHION_META_FUZZ_SEED`` run more
or other cases. The number of cases run is printed and recorded as the test's ``cases_run`` property.
"""

from __future__ import annotations

import datetime as dt
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from fashion_meta import constants as C
from fashion_meta.cli import main
from fashion_meta.synth import ShopSpec, generate_shop
from tests.fuzz import mutator as M

pytestmark = pytest.mark.spark
SEED = int(os.environ.get("FASHION_META_FUZZ_SEED", "20201128"))
ROW_CASES = int(os.environ.get("FASHION_META_FUZZ_CASES", "200"))
BATCH = int(os.environ.get("FASHION_META_FUZZ_BATCH", "100"))
NIGHTLY_RUNS = int(os.environ.get("FASHION_META_FUZZ_NIGHTLY", "1"))
NIGHTLY_ROW_CASES = 12
SPEC = ShopSpec(customers=120, articles=80, categories=5, days=10, seed=11)


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz_shop")
    generate_shop(SPEC, out)
    return out


def _run(argv: list[str], capsys) -> tuple[int, str]:
    code = main([*argv, "--log-level", "ERROR"])
    return code, capsys.readouterr().err


def _assert_no_traceback(err: str) -> None:
    assert "Traceback" not in err and "traceback in" not in err, err[-2000:]


def _table(spark, lake_root: str, name: str):
    return spark.read.format("delta").load(f"{lake_root}/{name}")


def check_batch(spark, batch: M.Batch, lake_root: str) -> dict[str, int]:
    """Account for every physical line of the batch's files after a successful ingest; per-file written rows."""
    runs = _table(spark, lake_root, "ops/run_log").where("stage IS NULL OR stage = 'ingest'").collect()
    counts = [r.counts for r in runs if r.counts and f"{C.TRANSACTIONS_FILE}.read" in r.counts][-1]
    rejects = _table(spark, lake_root, "bronze/rejects").collect()
    bronze_articles = {r.article_id: r for r in _table(spark, lake_root, "bronze/articles").collect()}
    written = {}
    for name in M.FILES:
        lines = batch.lines[name]
        mine = [r for r in rejects if r.source_file == batch.path(name).name]
        by_number = {r.row_number: r for r in mine}
        assert len(by_number) == len(mine), f"{name}: a line is rejected twice"
        assert counts[f"{name}.read"] == len(lines), (name, counts)
        assert counts[f"{name}.rejected"] == len(mine), (name, counts)
        assert counts[f"{name}.read"] == counts[f"{name}.written"] + counts[f"{name}.rejected"] + counts[f"{name}.skipped"]
        written[name] = counts[f"{name}.written"]
        assert set(by_number) <= {line.number for line in lines}, f"{name}: a reject names no input line"
        for line in lines:
            what = f"{name} line {line.number} case {line.case} {line.text[:120]!r}"
            got = by_number.get(line.number)
            if got is not None:
                assert got.reason, what
                try:
                    assert got.raw == line.text.decode("utf-8").rstrip("\r\n"), what
                except UnicodeDecodeError:
                    pass
            if line.expect == M.REJECT:
                assert got is not None, f"not rejected: {what}"
                assert any(r in got.reason for r in line.reasons), f"{what}: reason {got.reason!r}, want {line.reasons}"
            elif line.expect in (M.SAME, M.KEEP) and got is not None:
                cascade = (name == C.TRANSACTIONS_FILE and got.reason.startswith("unknown article_id")
                           and line.clean["article_id"] not in bronze_articles)
                assert cascade, f"good line lost: {what}: {got.reason}"
    _check_values(spark, batch, lake_root, bronze_articles, written)
    return written


def _check_values(spark, batch: M.Batch, lake_root: str, bronze_articles: dict, written: dict[str, int]) -> None:
    """Every unchanged good line is in bronze with its own values; bronze holds exactly the written rows."""
    rejected = {(n, r.row_number) for r in _table(spark, lake_root, "bronze/rejects").collect()
                for n in M.FILES if r.source_file == batch.path(n).name}
    same = {n: [ln.clean for ln in batch.lines[n] if ln.expect == M.SAME and (n, ln.number) not in rejected]
            for n in M.FILES}
    tx = Counter((r.t_dat.isoformat(), r.customer_id, r.article_id, r.price, r.sales_channel_id)
                 for r in _table(spark, lake_root, "bronze/transactions").collect())
    assert sum(tx.values()) == written[C.TRANSACTIONS_FILE]
    want = Counter((c["t_dat"], c["customer_id"].lower(), c["article_id"], float(c["price"]), int(c["sales_channel_id"]))
                   for c in same[C.TRANSACTIONS_FILE])
    assert not want - tx, f"good transactions missing from bronze: {list((want - tx).items())[:3]}"
    assert len(bronze_articles) == written[C.ARTICLES_FILE]
    for c in same[C.ARTICLES_FILE]:
        row = bronze_articles.get(c["article_id"])
        assert row is not None and row.product_code == int(c["product_code"]), c["article_id"]
        assert row.prod_name == (c["prod_name"] or "Unknown")
    customers = {r.customer_id: r for r in _table(spark, lake_root, "bronze/customers").collect()}
    assert len(customers) == written[C.CUSTOMERS_FILE]
    for c in same[C.CUSTOMERS_FILE]:
        row = customers.get(c["customer_id"].lower())
        assert row is not None and row.age == (int(c["age"]) if c["age"] else None), c["customer_id"]


def _check_features(spark, lake_root: str, run_date: dt.date) -> None:
    """Features of the run date cover exactly the customers with a good purchase in the 90 days up to it."""
    tx = _table(spark, lake_root, "bronze/transactions").where(
        f"t_dat <= DATE'{run_date}' AND t_dat > DATE'{run_date - dt.timedelta(days=90)}'")
    active = tx.select("customer_id").distinct().count()
    daily = _table(spark, lake_root, "features/customer_daily").where(f"feature_date = DATE'{run_date}'")
    assert daily.count() == active > 0
    assert _table(spark, lake_root, "features/group_category_daily").where(f"feature_date = DATE'{run_date}'").count() > 0


def test_row_cases_through_ingest_and_features(spark, shop_dir, tmp_path, capsys, record_property):
    """ROW_CASES row cases in batches of BATCH: one ingest + one features run per batch (see the module doc)."""
    shop = M.Shop.read(shop_dir)
    run_date = SPEC.start_date + dt.timedelta(days=SPEC.days - 1)
    done, kinds = 0, Counter()
    for b in range(-(-ROW_CASES // BATCH)):
        n = min(BATCH, ROW_CASES - done)
        batch = M.make_batch(shop, tmp_path / f"batch{b}", n, SEED + b, first_case_id=done)
        lake_root = str(tmp_path / f"lake{b}")
        layouts = {k: v.variant for k, v in batch.layouts.items()}
        code, err = _run(["ingest", "--input", str(batch.folder), "--lake", lake_root], capsys)
        _assert_no_traceback(err)
        assert code == 0, (layouts, err)
        check_batch(spark, batch, lake_root)
        # text vectors on the first batch only (the encoder's fixed cost); the corrupted texts reach it there
        extra = [] if b == 0 else ["--no-text-vectors"]
        code, err = _run(["features", "--run-date", run_date.isoformat(), "--lake", lake_root, *extra], capsys)
        _assert_no_traceback(err)
        assert code == 0, (layouts, err)
        _check_features(spark, lake_root, run_date)
        done += n
        kinds.update(m for case in batch.cases for m in case.mutations)
        with capsys.disabled():
            print(f"\nfuzz batch {b}: {n} row cases, layouts {layouts}")
    assert done == ROW_CASES >= 1
    record_property("cases_run", done)
    with capsys.disabled():
        print(f"fuzz: {done} row cases run through ingest + features; corruptions used: {dict(sorted(kinds.items()))}")


def test_file_cases_stop_with_one_line(spark, shop_dir, tmp_path, capsys, record_property):
    """Each whole-file corruption: exit 2, one 'error:' line naming the file/column, no traceback, no bronze."""
    cases = M.file_cases(shop_dir, tmp_path / "cases", random.Random(SEED))
    failures = []
    for case, folder in cases:
        lake_root = tmp_path / "lakes" / case.name
        code, err = _run(["ingest", "--input", str(folder), "--lake", str(lake_root)], capsys)
        lines = [line for line in err.splitlines() if line.strip()]
        problems = []
        if "Traceback" in err or "traceback in" in err:
            problems.append("traceback")
        if code != 2:
            problems.append(f"exit {code}")
        if len(lines) != 1 or "error:" not in lines[0]:
            problems.append(f"not one error line: {lines[-3:]}")
        elif any(w not in lines[0] for w in case.words):
            problems.append(f"line lacks {case.words}: {lines[0]}")
        if (lake_root / "bronze").exists():
            problems.append("bronze written")
        if problems:
            failures.append(f"{case.name}: {'; '.join(problems)}")
    record_property("cases_run", len(cases))
    with capsys.disabled():
        print(f"\nfuzz: {len(cases)} file cases run through ingest")
    assert not failures, "\n".join(failures)


NIGHTLY_SPEC = ShopSpec(customers=200, articles=120, categories=6, days=14, seed=5)
NIGHTLY_CONFIG = ("[tasks]\nwindow_days = 14\nmin_support = 2\nmin_query = 2\n"
                  "[vocabulary]\nnew_category_days = 3\nmin_category_history = 5\nmin_group_history = 3\n"
                  "[train]\nepochs = 1\n")


@pytest.mark.slow
@pytest.mark.parametrize("case", range(NIGHTLY_RUNS))
def test_nightly_on_a_corrupted_shop(case, spark, tmp_path_factory, tmp_path, capsys, record_property):
    """One nightly run: the tiny shop with 12 row cases in random drift layouts through every nightly stage."""
    shop_dir = tmp_path_factory.getbasetemp() / "fuzz_nightly_shop"
    if not (shop_dir / "transactions_train.csv").exists():
        generate_shop(NIGHTLY_SPEC, shop_dir)
    # the default seed's batch includes far_date (a purchase in 1900 or 2262): ingest keeps it as a valid date, and
    # the tasks stage must not take the feature days it adds to the window for missing ones
    batch = M.make_batch(M.Shop.read(shop_dir), tmp_path / "input", NIGHTLY_ROW_CASES, SEED + 1000 + case)
    config = tmp_path / "small.toml"
    config.write_text(NIGHTLY_CONFIG)
    lake_root = str(tmp_path / "lake")
    run_date = NIGHTLY_SPEC.start_date + dt.timedelta(days=NIGHTLY_SPEC.days - 1)
    code, err = _run(["nightly", "--input", str(batch.folder), "--lake", lake_root, "--run-date", run_date.isoformat(),
                      "--config", str(config)], capsys)
    _assert_no_traceback(err)
    layouts = {k: v.variant for k, v in batch.layouts.items()}
    assert code == 0, (layouts, [c.mutations for c in batch.cases], err[-3000:])
    written = check_batch(spark, batch, lake_root)
    _check_features(spark, lake_root, run_date)
    recs = _table(spark, lake_root, "recommendations").where(f"run_date = DATE'{run_date}'")
    assert recs.count() > 0
    assert Path(lake_root, "exports", f"run_date={run_date}", "manifest.json").is_file()
    assert len(batch.cases) >= 5
    record_property("cases_run", len(batch.cases))
    with capsys.disabled():
        print(f"\nfuzz nightly run {case}: {len(batch.cases)} row cases through the whole nightly; layouts {layouts}, written {written}, "
              f"corruptions {[m for c in batch.cases for m in c.mutations]}")
