"""Synthetic apparel shop in the H&M Kaggle format: articles.csv, customers.csv, transactions_train.csv.

The generative story (every draw comes from one seed, so a spec always gives byte-identical files):

1. **Latent space.** Customers, categories and articles live in one latent space (``vocab.LATENT_*``): a few
   named dimensions (youth, menswear vs womenswear, children's lines, price, online assortment) and 11 free
   taste dimensions. A purchase is more likely the larger the dot product of customer and item vectors.
2. **Categories** are H&M product types (``product_type_name``: Trousers, Dress, Sweater, ... 79 real names,
   then numbered extras such as "Top 2"), grouped in eight product groups. A category's taste vector is a
   product-group component plus its own component, so categories of one group resemble each other and what
   is learnt on warm categories transfers to new ones. Youth, gender and season come from the vocabulary
   (Hoodie and Sneakers are young, Blouse and Cardigan older, Swimwear peaks in July, Coats in January).
   About 15 % of the categories (at least 2 when there are 6 or more, 1 for 3-5, none below; never the first,
   Trousers) launch late, on a day in the last 10-25 % of the period; all their articles launch that day.
3. **Articles.** Each product (``product_code``) has 1-5 colour variants (``article_id`` = 7-digit product
   code + 3-digit variant) sharing name, text, line and most attributes. A product gets a line (index:
   Ladieswear, Divided, Menswear, children's...), garment group, department and section consistent with its
   type, a fit, material, pattern and 1-3 features, and a ``detail_desc`` written from exactly those words
   ("Oversized hoodie in soft sweatshirt fabric with a kangaroo pocket. Soft brushed inside."). Every word has
   a youth weight and a random taste vector, so the article latent = category latent + line effects +
   attribute effects + product and variant noise, and the text carries the signal a text encoder can use.
   Popularity is lognormal (a few best-sellers); most products exist from day 0 (with a random age), the rest
   launch during the period; new articles get a launch boost that fades over a few weeks, old ones age.
4. **Customers** get an age from H&M's bimodal distribution (1 % missing, a few implausible), club/newsletter
   columns, a shared-postal-code structure, and hidden state: a taste vector = age-band mean (a random walk
   over bands, so neighbouring bands are alike) + a channel component + individual noise; an online
   preference that is high for the young; a menswear, parent and price-sensitivity component; and a lognormal
   activity rate (22 % of customers are nearly dormant).
5. **Purchases**, day by day: each customer shops with probability 1 - exp(-k * activity * weekday factor *
   trend * daily shock) (weekend peak, +15 % over the period; k is solved so the expected total matches the
   target). A shopping trip is online with the customer's online preference and has a geometric number of
   items (mean about 2.4). Each item is either a re-purchase of something in the customer's recent history
   (likelier for basics such as socks and underwear) or a fresh pick in two stages: a category by softmax of
   customer-category affinity + category size, season and launch boost (only launched categories), then an
   article of that category by softmax of customer-article affinity + log popularity + launch recency - age
   (only launched articles). Cost is per category, not per catalogue. Some items are bought in several pieces,
   which appear as exact duplicate rows. Prices are the article's list price point, sometimes marked down
   (more often for older articles), divided by 590 like H&M's file.

Transactions are written day by day, so memory is O(customers + articles + one day's rows).
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import datetime
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from fashion_meta import constants
from fashion_meta.synth.catalog import PRICE_POINTS, PRICE_SCALE, Catalog, build_catalog
from fashion_meta.synth.population import Population, build_population

DEFAULT_PURCHASES_PER_CUSTOMER_DAY = 0.2
MIN_DAYS = 7
MAX_ARTICLES = 5_000_000

WEEKDAY_FACTOR = (0.90, 0.87, 0.90, 0.96, 1.07, 1.22, 1.08)  # Monday .. Sunday
TREND = 0.15  # relative growth of shopping over the period
DAILY_SHOCK_SIGMA = 0.08
BASKET_P = 0.42  # items per trip ~ geometric(BASKET_P), mean 1 / BASKET_P

CATEGORY_SIZE_ELASTICITY = 0.6  # category prior grows with log(articles on sale)
SEASON_STRENGTH = 0.7
SEASON_PEAK_DAY_OF_YEAR = 196  # mid July
LATE_CATEGORY_BOOST, LATE_CATEGORY_BOOST_DAYS = 1.0, 21.0
ARTICLE_AFFINITY_SCALE = 1.0
RECENCY_BOOST, RECENCY_DAYS = 1.2, 14.0
AGING_PER_DAY = 0.004

HISTORY_SLOTS = 16  # recent purchases remembered per customer for re-purchases
REPEAT_TRY = 0.04
REPEAT_ACCEPT_BASE = 0.15  # acceptance of a re-purchase for a non-basic; basics approach 1
DUPLICATE_BASE, DUPLICATE_BASIC = 0.015, 0.06  # P(several pieces) = base + basic * category basic-ness
DUPLICATE_EXTRA_P = 0.65  # extra pieces ~ geometric(p)

MARKDOWN_LEVELS = (1.0, 0.8, 0.7, 0.6, 0.5)
MARKDOWN_BASE, MARKDOWN_AGED, MARKDOWN_AGE_DAYS = 0.04, 0.30, 150.0

LOGIT_CELLS_PER_CHUNK = 1 << 18  # bounds the (items x candidates) score matrix (2 MiB, cache-sized)
SAFE_LOGIT = 600.0  # below exp's overflow (709) with room to spare


@dataclass(frozen=True)
class ShopSpec:
    """Size, period and seed of a synthetic shop."""

    customers: int = 10_000
    articles: int = 3_000
    categories: int = 30
    days: int = 120
    seed: int = 42
    start_date: datetime.date = datetime.date(2020, 6, 1)
    transactions: int | None = None  # approximate total; None: ~0.2 purchases per customer-day


@dataclass(frozen=True)
class LateCategory:
    """A category that launches during the period."""

    category: str
    launch_date: str
    articles: int


@dataclass(frozen=True)
class GenerateSummary:
    """What generate_shop wrote (JSON-serialisable through dataclasses.asdict)."""

    out_dir: str
    seed: int
    articles_rows: int
    customers_rows: int
    transactions_rows: int
    target_transactions: int
    categories: int
    period_start: str
    period_end: str
    first_transaction_date: str | None
    last_transaction_date: str | None
    late_categories: tuple[LateCategory, ...]
    elapsed_seconds: float


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate_spec(spec: ShopSpec) -> None:
    """Raise ValueError naming the first invalid field of a spec."""
    for name in ("customers", "articles", "categories", "days"):
        value = getattr(spec, name)
        if not _is_int(value) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if spec.days < MIN_DAYS:
        raise ValueError(f"days must be at least {MIN_DAYS} (a full week), got {spec.days}")
    if spec.categories > spec.articles:
        raise ValueError(f"categories ({spec.categories}) cannot exceed articles ({spec.articles}): "
                         "every category needs at least one article")
    if spec.articles > MAX_ARTICLES:
        raise ValueError(f"articles must be at most {MAX_ARTICLES:,}, got {spec.articles:,}")
    if not _is_int(spec.seed) or spec.seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {spec.seed!r}")
    if not isinstance(spec.start_date, datetime.date) or isinstance(spec.start_date, datetime.datetime):
        raise ValueError(f"start_date must be a datetime.date, got {spec.start_date!r}")
    if spec.transactions is not None:
        if not _is_int(spec.transactions) or spec.transactions <= 0:
            raise ValueError(f"transactions must be a positive integer or None, got {spec.transactions!r}")
        if spec.transactions > spec.customers * spec.days:
            raise ValueError(f"transactions ({spec.transactions:,}) is more than one per customer-day "
                             f"({spec.customers:,} customers x {spec.days} days); add customers or days")


def target_transactions(spec: ShopSpec) -> int:
    """The total number of transaction rows a spec aims at."""
    if spec.transactions is not None:
        return int(spec.transactions)
    return max(1, round(DEFAULT_PURCHASES_PER_CUSTOMER_DAY * spec.customers * spec.days))


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for catalogue, customers and purchases (changing one never shifts another)."""
    catalog_ss, population_ss, purchases_ss = np.random.SeedSequence(seed).spawn(3)
    return (np.random.default_rng(catalog_ss), np.random.default_rng(population_ss),
            np.random.default_rng(purchases_ss))


def launch_calendar(spec: ShopSpec) -> pd.DataFrame:
    """Every article's category and launch date (the first date it can be sold), as generate_shop builds them."""
    validate_spec(spec)
    catalog = build_catalog(spec.articles, spec.categories, spec.days, _streams(spec.seed)[0])
    return pd.DataFrame({
        "article_id": catalog.columns["article_id"],
        "product_type_name": catalog.columns["product_type_name"],
        "launch_date": pd.to_datetime(spec.start_date) + pd.to_timedelta(catalog.launch_day, unit="D"),
    })


def generate_shop(spec: ShopSpec, out_dir: str | Path,
                  progress: Callable[[str], None] | None = None) -> GenerateSummary:
    """Write articles.csv, customers.csv and transactions_train.csv for a synthetic shop into out_dir."""
    started = time.perf_counter()
    validate_spec(spec)
    report = progress or (lambda _line: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    catalog_rng, population_rng, purchases_rng = _streams(spec.seed)

    catalog = build_catalog(spec.articles, spec.categories, spec.days, catalog_rng)
    _write_table(out / f"{constants.ARTICLES_FILE}.csv", catalog.columns, constants.ARTICLE_COLUMNS)
    report(f"articles: {spec.articles:,} in {spec.categories} categories")
    population = build_population(spec.customers, population_rng)
    _write_table(out / f"{constants.CUSTOMERS_FILE}.csv", population.columns, constants.CUSTOMER_COLUMNS)
    report(f"customers: {spec.customers:,}")

    target = target_transactions(spec)
    simulation = _PurchaseSimulation(spec, catalog, population, purchases_rng, target)
    with _single_threaded_blas():
        rows, first_day, last_day = simulation.write(out / f"{constants.TRANSACTIONS_FILE}.csv", report)

    cats = catalog.categories
    late = tuple(
        LateCategory(cats.names[c], (spec.start_date + datetime.timedelta(days=int(cats.launch_day[c]))).isoformat(),
                     int(np.sum(catalog.category == c)))
        for c in sorted(cats.late, key=lambda c: (cats.launch_day[c], cats.names[c])))
    iso = lambda day: (spec.start_date + datetime.timedelta(days=day)).isoformat()  # noqa: E731
    return GenerateSummary(
        out_dir=str(out), seed=int(spec.seed), articles_rows=spec.articles, customers_rows=spec.customers,
        transactions_rows=rows, target_transactions=target, categories=spec.categories,
        period_start=spec.start_date.isoformat(), period_end=iso(spec.days - 1),
        first_transaction_date=None if first_day is None else iso(first_day),
        last_transaction_date=None if last_day is None else iso(last_day), late_categories=late,
        elapsed_seconds=round(time.perf_counter() - started, 3),
    )


def _write_table(path: Path, columns: dict[str, np.ndarray], names: tuple[str, ...]) -> None:
    """Write columns as CSV (quoted only where needed, None as empty), atomically via a temp file."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(zip(*(columns[name].tolist() for name in names)))
    os.replace(tmp, path)


def _sample_rows(logits: np.ndarray, u: np.ndarray, shift: bool) -> np.ndarray:
    """Per row, an index drawn from softmax(logits) by inverse CDF with the uniform u (overwrites logits).

    shift subtracts the row maximum first; it can be skipped when logits are known to be far below exp's
    overflow, which saves a pass over the (rows x candidates) matrix.
    """
    if shift:
        logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    np.cumsum(logits, axis=1, out=logits)
    target = u * logits[:, -1]
    return np.argmax(logits > target[:, None], axis=1)


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run numpy's bundled OpenBLAS on one thread for the duration (restored afterwards).

    Our matrix products are small (items x 17 x candidates); with several threads OpenBLAS spends more
    time waking and spinning its workers than computing, which made generation 3-4 times slower on 2 cores.
    Uses only ctypes; where no OpenBLAS is found (e.g. an MKL build) it does nothing.
    """
    restore = []
    numpy_dir = Path(np.__file__).parent
    libraries = sorted({*numpy_dir.parent.glob("numpy.libs/*openblas*"), *numpy_dir.glob(".dylibs/*openblas*")})
    for library in libraries:
        try:
            handle = ctypes.CDLL(str(library))
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("scipy_openblas", ""), ("openblas", "64_"),
                               ("openblas", "")):
            get = getattr(handle, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(handle, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                restore.append((set_, int(get())))
                set_(1)
                break
    try:
        yield
    finally:
        for set_, threads in restore:
            set_(threads)


def _hash_uniform(a: np.ndarray, b: int, salt: int) -> np.ndarray:
    """A uniform in [0, 1) that is a pure function of (a, b, salt) (splitmix64), for per-article-week markdowns."""
    x = a.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x ^= np.uint64((b * 0xBF58476D1CE4E5B9 + salt) % (1 << 64))
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


_ROW = np.dtype([("date", "S11"), ("customer", "S64"), ("c1", "S1"), ("article", "S10"), ("c2", "S1"),
                 ("price", "S18"), ("c3", "S1"), ("channel", "S1"), ("nl", "S1")])


class _PurchaseSimulation:
    """Day-by-day purchase process (see the module docstring); keeps only per-customer/per-article state."""

    def __init__(self, spec: ShopSpec, catalog: Catalog, population: Population, rng: np.random.Generator,
                 target: int) -> None:
        self.spec, self.catalog, self.population, self.rng = spec, catalog, population, rng
        cats = catalog.categories
        self.n_categories = len(cats.names)
        self.article_latent = ARTICLE_AFFINITY_SCALE * catalog.latent
        self.category_basic = cats.basic
        # Articles of each category ordered by launch day: the ones on sale on day d are a prefix.
        order = np.lexsort((np.arange(len(catalog.category)), catalog.launch_day, catalog.category))
        self.by_category = order
        self.category_start = np.searchsorted(catalog.category[order], np.arange(self.n_categories + 1))
        on_sale = np.zeros((self.n_categories, spec.days + 1), dtype=np.int64)
        np.add.at(on_sale, (catalog.category, np.minimum(catalog.launch_day, spec.days)), 1)
        self.on_sale = np.cumsum(on_sale, axis=1)[:, : spec.days]  # (categories, days)

        dates = [spec.start_date + datetime.timedelta(days=d) for d in range(spec.days)]
        self.dates = dates
        shock = rng.lognormal(0.0, DAILY_SHOCK_SIGMA, spec.days)
        self.day_factor = np.array([WEEKDAY_FACTOR[x.weekday()] for x in dates]) * (
            1.0 + TREND * np.arange(spec.days) / max(1, spec.days - 1)) * shock
        self.rate = self._solve_rate(target)
        # Softmax needs no max-shift if no score can come near exp's overflow (Cauchy-Schwarz bound).
        taste_norm = np.linalg.norm(population.latent, axis=1).max()
        bound = taste_norm * max(np.linalg.norm(self.article_latent, axis=1).max(),
                                 np.linalg.norm(cats.latent, axis=1).max())
        bias_bound = max(catalog.log_popularity.max() + RECENCY_BOOST,
                         CATEGORY_SIZE_ELASTICITY * math.log(len(catalog.category)) + cats.popularity.max()
                         + SEASON_STRENGTH + LATE_CATEGORY_BOOST)
        self.shift = bool(bound + bias_bound > SAFE_LOGIT)
        self.history = np.full((len(population.activity), HISTORY_SLOTS), -1, dtype=np.int32)
        self.history_next = np.zeros(len(population.activity), dtype=np.int64)
        self.salt = int(rng.integers(0, 1 << 62))
        prices = (PRICE_POINTS[:, None] * np.array(MARKDOWN_LEVELS)[None, :]) / PRICE_SCALE
        if prices.max() >= 1.0:
            raise AssertionError("price table must stay below 1.0 for the fixed-width price field")
        self.price_text = np.array([b"%.16f" % p for p in prices.ravel()], dtype="S18")

    def _rows_per_trip(self) -> float:
        basic = self.category_basic[self.catalog.category]
        p_dup = float(np.mean(DUPLICATE_BASE + DUPLICATE_BASIC * basic))
        return (1.0 / BASKET_P) * (1.0 + p_dup / DUPLICATE_EXTRA_P)

    def _solve_rate(self, target: int) -> float:
        """k such that the expected rows, sum over customer-days of 1 - exp(-k a f), hit the target."""
        trips = target / self._rows_per_trip()
        activity = np.sort(self.population.activity)
        bins = np.array_split(activity, min(len(activity), 4096))
        a = np.array([b.mean() for b in bins])[:, None]
        weight = np.array([len(b) for b in bins], dtype=np.float64)[:, None]
        f = self.day_factor[None, :]
        expected = lambda k: float((weight * -np.expm1(-k * a * f)).sum())  # noqa: E731
        hi = 1.0
        while expected(hi) < trips and hi < 1e12:
            hi *= 2.0
        lo = 0.0
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if expected(mid) < trips else (lo, mid)
        return hi

    def _category_bias(self, d: int) -> np.ndarray:
        cats = self.catalog.categories
        day_of_year = self.dates[d].timetuple().tm_yday
        season = SEASON_STRENGTH * cats.season * math.cos(2 * math.pi * (day_of_year - SEASON_PEAK_DAY_OF_YEAR)
                                                           / 365.25)
        since_launch = d - cats.launch_day
        boost = np.where((cats.launch_day > 0) & (since_launch >= 0),
                         LATE_CATEGORY_BOOST * np.exp(-np.maximum(since_launch, 0) / LATE_CATEGORY_BOOST_DAYS), 0.0)
        n_on_sale = self.on_sale[:, d]
        with np.errstate(divide="ignore"):
            size = CATEGORY_SIZE_ELASTICITY * np.log(n_on_sale)
        return np.where(n_on_sale > 0, size + cats.popularity + season + boost, -np.inf)

    def _article_bias(self, d: int) -> np.ndarray:
        cat = self.catalog
        age = np.maximum(d - cat.launch_day, 0) + cat.pre_age
        return cat.log_popularity + RECENCY_BOOST * np.exp(-age / RECENCY_DAYS) - AGING_PER_DAY * age

    def _pick_articles(self, d: int, customers: np.ndarray, category_bias: np.ndarray,
                       article_bias: np.ndarray) -> np.ndarray:
        """Two-stage fresh picks for the given item customers: a category, then an article within it."""
        rng, n = self.rng, len(customers)
        u_category, u_article = rng.random(n), rng.random(n)
        # Scores as one product: [taste, 1] @ [latent; bias], over what is on sale only.
        taste = np.hstack([self.population.latent[customers], np.ones((n, 1))])
        live = np.flatnonzero(np.isfinite(category_bias))
        category_table = np.vstack([self.catalog.categories.latent[live].T, category_bias[live]])
        category = live[_sample_rows(taste @ category_table, u_category, self.shift)]
        picked = np.empty(n, dtype=np.int64)
        order = np.argsort(category, kind="stable")
        bounds = np.searchsorted(category[order], np.arange(self.n_categories + 1))
        for c in np.flatnonzero(np.diff(bounds)):
            rows = order[bounds[c]: bounds[c + 1]]
            candidates = self.by_category[self.category_start[c]: self.category_start[c] + self.on_sale[c, d]]
            table = np.vstack([self.article_latent[candidates].T, article_bias[candidates]])
            step = max(1, LOGIT_CELLS_PER_CHUNK // len(candidates))
            for s in range(0, len(rows), step):
                chunk = rows[s: s + step]
                picked[chunk] = candidates[_sample_rows(taste[chunk] @ table, u_article[chunk], self.shift)]
        return picked

    def _day(self, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One day's rows, in customer order: (customer, article, price code, online)."""
        rng, pop, cat = self.rng, self.population, self.catalog
        p_shop = -np.expm1(-self.rate * pop.activity * self.day_factor[d])
        shoppers = np.flatnonzero(rng.random(len(p_shop)) < p_shop)
        n_items = rng.geometric(BASKET_P, len(shoppers))
        online = rng.random(len(shoppers)) < pop.online[shoppers]
        item_customer = np.repeat(shoppers, n_items)
        item_online = np.repeat(online, n_items)
        n = len(item_customer)

        # Re-purchases from recent history, likelier for basics.
        try_repeat = rng.random(n) < REPEAT_TRY
        slot = rng.integers(0, HISTORY_SLOTS, n)
        accept = rng.random(n)
        remembered = self.history[item_customer, slot]
        basic = self.category_basic[cat.category[np.maximum(remembered, 0)]]
        repeat = try_repeat & (remembered >= 0) & (accept < REPEAT_ACCEPT_BASE + (1 - REPEAT_ACCEPT_BASE) * basic)
        article = np.where(repeat, remembered, -1)
        fresh = np.flatnonzero(~repeat)
        category_bias, article_bias = self._category_bias(d), self._article_bias(d)
        picked = self._pick_articles(d, item_customer[fresh], category_bias, article_bias)
        # A fresh pick of something the customer already owns is mostly reconsidered (basics less so).
        owned = (self.history[item_customer[fresh]] == picked[:, None]).any(axis=1)
        redraw = np.flatnonzero(owned & (rng.random(len(fresh)) >= self.category_basic[cat.category[picked]]))
        picked[redraw] = self._pick_articles(d, item_customer[fresh[redraw]], category_bias, article_bias)
        article[fresh] = picked

        # Prices: list price point, marked down per article and week (more often for older articles).
        age = d - cat.launch_day[article] + cat.pre_age[article]
        u_markdown = _hash_uniform(article, (d + self.spec.start_date.toordinal()) // 7, self.salt)
        p_markdown = MARKDOWN_BASE + MARKDOWN_AGED * np.minimum(1.0, age / MARKDOWN_AGE_DAYS)
        level = np.where(u_markdown < p_markdown,
                         1 + (u_markdown / p_markdown * (len(MARKDOWN_LEVELS) - 1)).astype(np.int64), 0)
        price_code = cat.price_point[article] * len(MARKDOWN_LEVELS) + np.minimum(level, len(MARKDOWN_LEVELS) - 1)

        # Several pieces of one item: exact duplicate rows.
        p_dup = DUPLICATE_BASE + DUPLICATE_BASIC * self.category_basic[cat.category[article]]
        extra = np.where(rng.random(n) < p_dup, rng.geometric(DUPLICATE_EXTRA_P, n), 0)
        self._remember(shoppers, n_items, item_customer, article)
        copies = 1 + extra
        return (np.repeat(item_customer, copies), np.repeat(article, copies), np.repeat(price_code, copies),
                np.repeat(item_online, copies))

    def _remember(self, shoppers: np.ndarray, n_items: np.ndarray, item_customer: np.ndarray,
                  article: np.ndarray) -> None:
        """Push today's items into each customer's ring buffer of recent purchases."""
        first = np.repeat(np.cumsum(n_items) - n_items, n_items)
        rank = np.arange(len(item_customer)) - first
        keep = rank >= np.repeat(n_items, n_items) - HISTORY_SLOTS  # only the last slots' worth
        slot = (self.history_next[item_customer] + rank) % HISTORY_SLOTS
        self.history[item_customer[keep], slot[keep]] = article[keep]
        self.history_next[shoppers] = (self.history_next[shoppers] + n_items) % HISTORY_SLOTS

    def write(self, path: Path, report: Callable[[str], None]) -> tuple[int, int | None, int | None]:
        """Simulate every day and append its rows to path; returns (rows, first day, last day with rows)."""
        tmp = path.with_name(path.name + ".tmp")
        total, first_day, last_day = 0, None, None
        every = max(1, math.ceil(self.spec.days / 10))
        customer_ids, article_ids = self.population.customer_id, self.catalog.article_id
        with open(tmp, "wb", buffering=1 << 20) as f:
            f.write((",".join(constants.TRANSACTION_COLUMNS) + "\n").encode())
            for d in range(self.spec.days):
                customer, article, price_code, online = self._day(d)
                n = len(customer)
                if n:
                    rows = np.empty(n, dtype=_ROW)
                    rows["date"] = self.dates[d].isoformat().encode() + b","
                    rows["customer"] = customer_ids[customer]
                    rows["article"] = article_ids[article]
                    rows["price"] = self.price_text[price_code]
                    rows["channel"] = np.where(online, b"2", b"1")
                    rows["c1"] = rows["c2"] = rows["c3"] = b","
                    rows["nl"] = b"\n"
                    f.write(rows.data)
                    total += n
                    first_day = d if first_day is None else first_day
                    last_day = d
                if (d + 1) % every == 0 or d + 1 == self.spec.days:
                    report(f"transactions: day {d + 1}/{self.spec.days} ({self.dates[d].isoformat()}), "
                           f"{total:,} rows")
        os.replace(tmp, path)
        return total, first_day, last_day
