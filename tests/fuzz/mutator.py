"""A seeded mutator over a valid H&M shop: corrupted records (row cases) and corrupted files (file cases).

A row case is one clean data row of one file replaced by one or more physical lines built from it with one or
two field corruptions and/or one structural corruption; every physical line carries what ingest must do with
it (reject with one of some reasons, keep unchanged, keep changed, or either) so the checker can account for
every input line. Many row cases share one input folder (distinct rows, one ingest run), each file of it in a
tolerated schema-drift layout (reordered, extra column, odd header, CRLF, gzip, renamed optional column).
"""

from __future__ import annotations

import csv
import gzip
import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from fashion_meta import constants as C

FILES = (C.ARTICLES_FILE, C.CUSTOMERS_FILE, C.TRANSACTIONS_FILE)
COLUMNS = {C.ARTICLES_FILE: C.ARTICLE_COLUMNS, C.CUSTOMERS_FILE: C.CUSTOMER_COLUMNS,
           C.TRANSACTIONS_FILE: C.TRANSACTION_COLUMNS}
REJECT, SAME, KEEP, EITHER = "reject", "same", "keep", "either"  # SAME: kept with the clean row's values
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


@dataclass
class Line:
    """One physical line of a mutated file and what ingest must do with it."""

    text: bytes
    expect: str
    reasons: tuple[str, ...] = ()  # for REJECT: at least one is in the reject reason ("" = any reason)
    clean: dict[str, str] | None = None  # the clean record (values by column) it came from
    case: int | None = None  # row case id; None for an unmutated line
    number: int = 0  # physical line number in the file (header = 1), set when written


@dataclass
class RowCase:
    case_id: int
    file: str
    row: int
    mutations: tuple[str, ...]
    lines: list[Line] = field(default_factory=list)


@dataclass
class Shop:
    """A clean shop read back as records: file -> list of {column: value}."""

    records: dict[str, list[dict[str, str]]]

    @classmethod
    def read(cls, folder: Path) -> "Shop":
        records = {}
        for name in FILES:
            with open(folder / f"{name}.csv", newline="", encoding="utf-8") as fh:
                records[name] = list(csv.DictReader(fh))
        return cls(records)


def token(value: str) -> str:
    """A CSV field as the Kaggle files write it (quoted only when needed)."""
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


# ------------------------------------------------------------------------------------------ field corruptions
# Each takes (rng, value, record) and returns (new raw token, expectation, reasons).
def _v(value):  # a plain replacement value
    return token(value)


def _bad_date(rng, v, r):
    return _v(rng.choice(["2020-02-30", "2020/06/03", "20200603", "03-06-2020", "2020-6-3", "yesterday",
                          "2020-13-01", "\ufeff" + v, v + "T00:00"])), REJECT, ("unparseable date",)


def _far_date(rng, v, r):
    return rng.choice(["1900-01-01", "2262-04-12"]), KEEP, ()


def _text_price(rng, v, r):
    return _v(rng.choice(["abc", "1.2.3", "0x1A", "€5", "1_000", "0,5", "--1"])), REJECT, ("price is not a number",)


def _nonfinite_price(rng, v, r):
    return rng.choice(["NaN", "Infinity", "1e400"]), REJECT, ("price is not a finite number",)


def _negative_price(rng, v, r):
    return rng.choice(["-" + v if float(v) > 0 else "-0.01", "-0.01", "-1e300"]), REJECT, ("negative price",)


def _huge_price(rng, v, r):
    return rng.choice(["1e300", "99999999999", "0"]), KEEP, ()


def _bad_channel(rng, v, r):
    return rng.choice(["0", "3", "-1", "x", "12"]), REJECT, ("unknown sales channel",)


def _bad_customer(rng, v, r):
    bad = rng.choice([v[:-1], v + "a", v[:10] + "g" + v[11:], v[:5] + "é" + v[6:], v[:3] + "\uff10" + v[4:], v + " x"])
    return _v(bad), REJECT, ("malformed customer_id",)


def _upper_customer(rng, v, r):
    return v.upper(), SAME, ()


def _bad_article(rng, v, r):
    bad = rng.choice([v[1:], v + "0", v[:4] + "x" + v[5:], str(int(v)) + ".0", "0" * 10 + "1"])
    return _v(bad), REJECT, ("malformed article_id",)


def _unknown_article(rng, v, r):
    return "0999999" + f"{rng.randrange(1000):03d}", REJECT, ("unknown article_id",)


def _padded(rng, v, r):
    return rng.choice([" ", "  "]) + v + rng.choice(["", " "]), SAME, ()


def _quoted(rng, v, r):
    return '"' + v.replace('"', '""') + '"', SAME, ()


def _overlong(rng, v, r):
    return "x" * 20_001, REJECT, ("field too long",)


def _control_char(rng, v, r):
    return _v(v[:2] + rng.choice(["\x00", "\t", "\x07"]) + v[2:]), EITHER, ()


def _emptied(expect, reasons):
    return lambda rng, v, r: ("", expect, reasons)


def _not_integer(rng, v, r):
    return _v(rng.choice(["abc", "1 2", "12x", "9" * 30])), REJECT, ("not an integer",)


def _fancy_text(rng, v, r):
    extra = rng.choice(["Ünïcødé ✓ 👗", "שמלה", "a, \"quoted\" part", "  ", "e\u0301", "中文描述", "\u200b"])
    return _v(v + " " + extra), KEEP, ()


def _not_number(what):
    return lambda rng, v, r: (_v(rng.choice(["yes", "1,0", "one"])), REJECT, (f"{what} is not a number",))


def _odd_age(rng, v, r):
    return rng.choice(["", "-3", "0", "150", "999"]), KEEP, ()


FIELD_MUTATIONS = {
    C.TRANSACTIONS_FILE: {
        "bad_date": ("t_dat", _bad_date),
        "far_date": ("t_dat", _far_date),
        "empty_date": ("t_dat", _emptied(REJECT, ("unparseable date",))),
        "text_price": ("price", _text_price),
        "nonfinite_price": ("price", _nonfinite_price),
        "negative_price": ("price", _negative_price),
        "huge_or_zero_price": ("price", _huge_price),
        "empty_price": ("price", _emptied(REJECT, ("missing price",))),
        "bad_channel": ("sales_channel_id", _bad_channel),
        "empty_channel": ("sales_channel_id", _emptied(REJECT, ("unknown sales channel",))),
        "bad_customer": ("customer_id", _bad_customer),
        "empty_customer": ("customer_id", _emptied(REJECT, ("malformed customer_id",))),
        "upper_customer": ("customer_id", _upper_customer),
        "bad_article": ("article_id", _bad_article),
        "unknown_article": ("article_id", _unknown_article),
        "padded_price": ("price", _padded),
        "padded_article": ("article_id", _padded),
        "quoted_date": ("t_dat", _quoted),
        "quoted_customer": ("customer_id", _quoted),
        "overlong_customer": ("customer_id", _overlong),
        "control_char_price": ("price", _control_char),
        "control_char_date": ("t_dat", _control_char),
    },
    C.ARTICLES_FILE: {
        "bad_article": ("article_id", _bad_article),
        "empty_article": ("article_id", _emptied(REJECT, ("malformed article_id",))),
        "text_product_code": ("product_code", _not_integer),
        "text_type_no": ("product_type_no", _not_integer),
        "empty_prod_name": ("prod_name", _emptied(KEEP, ())),
        "fancy_desc": ("detail_desc", _fancy_text),
        "fancy_name": ("prod_name", _fancy_text),
        "overlong_desc": ("detail_desc", _overlong),
        "control_char_desc": ("detail_desc", _control_char),
        "padded_code": ("product_code", _padded),
        "quoted_name": ("prod_name", _quoted),
    },
    C.CUSTOMERS_FILE: {
        "bad_customer": ("customer_id", _bad_customer),
        "upper_customer": ("customer_id", _upper_customer),
        "text_age": ("age", _not_integer),
        "odd_age": ("age", _odd_age),
        "text_fn": ("FN", _not_number("FN")),
        "text_active": ("Active", _not_number("Active")),
        "fancy_status": ("club_member_status", _fancy_text),
        "overlong_postal": ("postal_code", _overlong),
        "padded_age": ("age", _padded),
    },
}
STRUCTURAL = ("drop_field", "extra_field", "unbalanced_quote", "embedded_newline", "truncated", "blank_line",
              "invalid_utf8", "crlf", "cr", "duplicate_row")
_RANK = {REJECT: 3, EITHER: 2, KEEP: 1, SAME: 0}


def _combine(expects: list[tuple[str, tuple[str, ...]]]) -> tuple[str, tuple[str, ...]]:
    worst = max((e for e, _ in expects), key=_RANK.__getitem__, default=SAME)
    reasons = tuple(r for e, rs in expects if e == REJECT for r in rs)
    return worst, reasons


class Layout:
    """A file's column order and header text under one schema-drift variant (tolerated by the README rules)."""

    VARIANTS = ("none", "reorder", "extra_column", "header_case", "crlf", "renamed_optional", "gzip")

    def __init__(self, name: str, variant: str, rng: random.Random):
        self.name, self.variant = name, variant
        self.columns = list(COLUMNS[name])
        self.eol = "\r\n" if variant == "crlf" else "\n"
        self.extra_at = None
        if variant == "reorder":
            rng.shuffle(self.columns)
        if variant == "extra_column":
            self.extra_at = rng.randrange(len(self.columns) + 1)
        heads = list(self.columns)
        if variant == "header_case":
            heads = ['"' + h.upper() + '"' if i % 2 else " " + h.upper() for i, h in enumerate(heads)]
            heads[0] = "\ufeff" + heads[0]
        if variant == "renamed_optional":
            optional = [c for c in self.columns if c not in C.REQUIRED_COLUMNS[name]]
            self.renamed = rng.choice(optional) if optional else None
            heads = [h + "_v2" if h == self.renamed else h for h in heads]
        else:
            self.renamed = None
        if self.extra_at is not None:
            heads.insert(self.extra_at, "loyalty_points")
        self.header = ",".join(heads)
        self.suffix = ".csv.gz" if variant == "gzip" else ".csv"

    def tokens(self, record: dict[str, str], rng: random.Random) -> list[str]:
        out = [token(record[c]) for c in self.columns]
        if self.extra_at is not None:
            out.insert(self.extra_at, str(rng.randrange(1000)))
        return out

    def index(self, column: str) -> int:
        i = self.columns.index(column)
        return i + 1 if self.extra_at is not None and self.extra_at <= i else i


def _structural(kind: str, rng: random.Random, toks: list[str], eol: str) -> list[tuple[bytes, str, tuple[str, ...]]]:
    """Physical lines (text, expectation override or '', reasons) of a record after a structural corruption."""
    line = ",".join(toks)
    if kind == "drop_field":
        del toks[rng.randrange(len(toks))]
        return [((",".join(toks) + eol).encode(), REJECT, ("wrong field count",))]
    if kind == "extra_field":
        toks.insert(rng.randrange(len(toks) + 1), rng.choice(["", "x", "1"]))
        return [((",".join(toks) + eol).encode(), REJECT, ("wrong field count",))]
    if kind == "unbalanced_quote":
        i = rng.randrange(len(toks))
        toks[i] = '"' + toks[i]
        return [((",".join(toks) + eol).encode(), REJECT, ("",))]
    if kind == "embedded_newline":
        i = rng.randrange(len(toks))
        toks[i] = '"' + (toks[i].strip('"') or "a") + rng.choice(["\n", "\r\n", "\r"]) + "tail" + '"'
        parts = _LINE_BREAK.split((",".join(toks)).encode())
        return [(p + eol.encode(), REJECT, ("",)) for p in parts]
    if kind == "truncated":
        cut = rng.randrange(1, line.rfind(",") + 1)  # loses at least the last separator: fewer fields
        return [((line[:cut] + eol).encode(), REJECT, ("",))]
    if kind == "blank_line":
        return [(rng.choice(["", "   ", "\t"]).encode() + eol.encode(), REJECT, ("blank line", "wrong field count")),
                ((line + eol).encode(), "", ())]
    if kind == "invalid_utf8":
        raw = line.encode()
        i = rng.randrange(1, len(raw))
        while i < len(raw) and (raw[i] & 0xC0) == 0x80:  # not inside a multi-byte character
            i += 1
        return [(raw[:i] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + raw[i:] + eol.encode(), REJECT,
                 ("invalid UTF-8 bytes",))]
    if kind in ("crlf", "cr"):
        return [((line + ("\r\n" if kind == "crlf" else "\r")).encode(), "", ())]
    if kind == "duplicate_row":
        return [((line + eol).encode(), "", ()), ((line + eol).encode(), "duplicate", ())]
    raise ValueError(kind)


def make_row_case(case_id: int, name: str, row: int, record: dict[str, str], layout: Layout, rng: random.Random,
                  known_articles: set[str], exclude: frozenset[str] = frozenset()) -> RowCase:
    """One row case: 1-2 field corruptions on distinct columns and/or one structural corruption."""
    table = FIELD_MUTATIONS[name]
    roll = rng.random()
    n_fields = 0 if roll < 0.25 else (2 if roll > 0.85 else 1)
    structural = rng.choice(STRUCTURAL) if n_fields == 0 or rng.random() < 0.15 else None
    chosen, used = [], set()
    for kind in rng.sample(sorted(table), len(table)):
        column, _ = table[kind]
        if len(chosen) < n_fields and column not in used and layout.renamed != column and kind not in exclude:
            chosen.append(kind)
            used.add(column)
    toks = layout.tokens(record, rng)
    expects = []
    for kind in chosen:
        column, fn = table[kind]
        value, expect, reasons = fn(rng, record[column], record)
        if kind == "unknown_article":
            while value in known_articles:
                value = "0999999" + f"{rng.randrange(1000):03d}"
        toks[layout.index(column)] = value
        expects.append((expect, reasons))
    base = _combine(expects)
    eol = layout.eol
    pieces = _structural(structural, rng, toks, eol) if structural else [((",".join(toks) + eol).encode(), "", ())]
    lines = []
    for text, override, reasons in pieces:
        if override == REJECT:
            expect = (REJECT, base[1] + reasons if base[0] == REJECT else reasons)
        elif override == "duplicate":
            # a repeated transaction is a real repeat purchase; a repeated article or customer id is rejected
            expect = base if name == C.TRANSACTIONS_FILE or base[0] == REJECT else (
                (REJECT, (f"duplicate {'article_id' if name == C.ARTICLES_FILE else 'customer_id'}",)))
            if name != C.TRANSACTIONS_FILE and base[0] in (EITHER,):
                expect = (EITHER, ())
        else:
            expect = base
        lines.append(Line(text, expect[0], expect[1], record, case_id))
    return RowCase(case_id, name, row, tuple(chosen) + ((structural,) if structural else ()), lines)


@dataclass
class Batch:
    """One input folder: the three files, their lines and the row cases in them."""

    folder: Path
    lines: dict[str, list[Line]]
    layouts: dict[str, Layout]
    cases: list[RowCase]

    def path(self, name: str) -> Path:
        return self.folder / f"{name}{self.layouts[name].suffix}"


def make_batch(shop: Shop, folder: Path, n_cases: int, seed: int, first_case_id: int = 0,
               exclude: frozenset[str] = frozenset()) -> Batch:
    """Write ``folder`` with ``n_cases`` row cases spread over the three files, each file in a random layout."""
    rng = random.Random(seed)
    layouts = {}
    for name in FILES:
        variants = [v for v in Layout.VARIANTS if v != "gzip" or name == C.TRANSACTIONS_FILE]
        layouts[name] = Layout(name, rng.choice(variants), rng)
    share = {C.TRANSACTIONS_FILE: 0.5, C.ARTICLES_FILE: 0.2, C.CUSTOMERS_FILE: 0.3}
    counts = {n: int(n_cases * s) for n, s in share.items()}
    counts[C.TRANSACTIONS_FILE] += n_cases - sum(counts.values())
    known = {r["article_id"] for r in shop.records[C.ARTICLES_FILE]}
    # article cases first: transaction cases avoid their articles so a rejected article's purchases
    # (rejected as unknown by rule) never hide what a transaction case does
    article_rows = rng.sample(range(len(shop.records[C.ARTICLES_FILE])), counts[C.ARTICLES_FILE])
    touched = {shop.records[C.ARTICLES_FILE][i]["article_id"] for i in article_rows}
    tx_pool = [i for i, r in enumerate(shop.records[C.TRANSACTIONS_FILE]) if r["article_id"] not in touched]
    rows = {
        C.ARTICLES_FILE: article_rows,
        C.CUSTOMERS_FILE: rng.sample(range(len(shop.records[C.CUSTOMERS_FILE])), counts[C.CUSTOMERS_FILE]),
        C.TRANSACTIONS_FILE: rng.sample(tx_pool, counts[C.TRANSACTIONS_FILE]),
    }
    cases, lines = [], {}
    case_id = first_case_id
    folder.mkdir(parents=True)
    for name in FILES:
        layout = layouts[name]
        by_row = {}
        for row in sorted(rows[name]):
            by_row[row] = make_row_case(case_id, name, row, shop.records[name][row], layout, rng, known, exclude)
            cases.append(by_row[row])
            case_id += 1
        out: list[Line] = []
        for i, record in enumerate(shop.records[name]):
            if i in by_row:
                out.extend(by_row[i].lines)
            else:
                out.append(Line((",".join(layout.tokens(record, rng)) + layout.eol).encode(), SAME, (), record))
        lines[name] = out
        for number, line in enumerate(out, start=2):
            line.number = number
        data = (layout.header + layout.eol).encode() + b"".join(line.text for line in out)
        target = folder / f"{name}{layout.suffix}"
        target.write_bytes(gzip.compress(data) if layout.suffix == ".csv.gz" else data)
    return Batch(folder, lines, layouts, cases)


# ------------------------------------------------------------------------------------------ file cases
@dataclass
class FileCase:
    """A whole-file corruption: ingest must stop with exit 2 and one line naming ``words``."""

    name: str
    words: tuple[str, ...]


def _write_clean(shop_dir: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / f"{name}.csv").write_bytes((shop_dir / f"{name}.csv").read_bytes())


def _drop_column(path: Path, column: str, rename: str | None = None) -> None:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    i = rows[0].index(column)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        if rename is None:
            writer.writerow(row[:i] + row[i + 1:])
        else:
            writer.writerow([rename if j == i and row is rows[0] else v for j, v in enumerate(row)])
    path.write_text(buf.getvalue(), encoding="utf-8")


def file_cases(shop_dir: Path, root: Path, rng: random.Random) -> list[tuple[FileCase, Path]]:
    """Every file-level corruption as (case, input folder)."""
    out = []

    def case(name: str, words: tuple[str, ...]) -> Path:
        folder = root / name
        _write_clean(shop_dir, folder)
        out.append((FileCase(name, words), folder))
        return folder

    tx = f"{C.TRANSACTIONS_FILE}.csv"
    for name in FILES:
        (case(f"missing_{name}", (name,)) / f"{name}.csv").unlink()
        (case(f"empty_{name}", (name, "empty")) / f"{name}.csv").write_bytes(b"")
    for name in FILES:
        for column in C.REQUIRED_COLUMNS[name]:
            _drop_column(case(f"no_{name}_{column}", (name, column)) / f"{name}.csv", column)
    _drop_column(case("renamed_price", (tx, "price")) / tx, "price", rename="amount")
    _drop_column(case("renamed_age", ("customers", "age")) / "customers.csv", "age", rename="age_years")
    p = case("blank_header", (tx, "empty")) / tx
    p.write_bytes(b"\n" + p.read_bytes())
    p = case("semicolon_delimiter", (tx, "t_dat")) / tx
    p.write_text(p.read_text().replace(",", ";"))
    p = case("tab_delimiter", ("customers", "customer_id")) / "customers.csv"
    p.write_text(p.read_text().replace(",", "\t"))
    p = case("duplicate_header_column", (tx, "PRICE", "twice")) / tx
    lines = p.read_text().splitlines()
    p.write_text("\n".join([lines[0] + ",PRICE"] + [line + ",1" for line in lines[1:]]) + "\n")
    folder = case("two_transactions_files", ("several files",))
    (folder / f"{C.TRANSACTIONS_FILE}.parquet").write_bytes(b"PAR1")
    folder = case("garbage_parquet", (f"{C.TRANSACTIONS_FILE}.parquet", "Parquet"))
    (folder / tx).unlink()
    (folder / f"{C.TRANSACTIONS_FILE}.parquet").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    folder = case("garbage_gzip", (f"{C.TRANSACTIONS_FILE}.csv.gz",))
    (folder / tx).unlink()
    (folder / f"{C.TRANSACTIONS_FILE}.csv.gz").write_bytes(bytes(rng.randrange(256) for _ in range(4096)))
    folder = case("truncated_gzip", (f"{C.TRANSACTIONS_FILE}.csv.gz",))
    data = gzip.compress((folder / tx).read_bytes())
    (folder / tx).unlink()
    (folder / f"{C.TRANSACTIONS_FILE}.csv.gz").write_bytes(data[: len(data) // 2])
    p = case("binary_garbage_csv", (tx, "t_dat")) / tx
    p.write_bytes(b"\x89PNG" + bytes(b for b in (rng.randrange(1, 256) for _ in range(4096)) if b != ord(",")))
    return out
