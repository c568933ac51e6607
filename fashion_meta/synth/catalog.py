"""The synthetic assortment: categories with shared latent structure, products, colour variants and their text."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fashion_meta.synth import vocab
from fashion_meta.synth.vocab import CategorySpec

# List prices in the unit that H&M's file divides by 590 (so 29.99 is written as 0.0508...).
PRICE_POINTS = np.array([2.99, 3.99, 4.99, 5.99, 6.99, 7.99, 9.99, 12.99, 14.99, 17.99, 19.99, 24.99, 29.99,
                         34.99, 39.99, 44.99, 49.99, 59.99, 69.99, 79.99, 99.99, 129.99, 149.99])
PRICE_SCALE = 590.0
PREMIUM_MATERIAL_WORDS = ("leather", "cashmere", "wool", "silk", "sterling", "pearls")
CHEAP_LINES = ("D", "G", "H", "I", "J")  # Divided and children's lines sit one price point lower

VARIANTS_PER_PRODUCT = (0.42, 0.26, 0.16, 0.10, 0.06)  # P(1..5 colour variants)
MISSING_DESC_RATE = 0.004
LATE_SHARE = 0.15
LATE_WINDOW = (0.75, 0.90)  # late categories launch between these fractions of the period
WARM_LAUNCH_AT_START = 0.72  # share of products in the shop from day 0; the rest launch during the period
MAX_PRE_AGE_DAYS = 240  # how long a day-0 product may already have been on sale

# Latent scales: taste vectors are divided by sqrt(dims) so a dot product has a fixed spread.
TASTE_SCALE = 1.2 / math.sqrt(vocab.LATENT_TASTE_DIMS)  # article attributes and noise
CATEGORY_TASTE_SCALE = 0.8 / math.sqrt(vocab.LATENT_TASTE_DIMS)
CATEGORY_YOUTH_SCALE = 0.8
WOMENSWEAR_CATEGORY_GENDER = -1.5
ARTICLE_YOUTH_LINE = 0.6
ARTICLE_YOUTH_WORDS = 0.35
ARTICLE_KIDS = (1.5, -0.25)  # children's line, adult line


@dataclass(frozen=True)
class CategoryTable:
    """Per category (index c): name, type number, product group, launch day, latent vector, priors."""

    names: tuple[str, ...]
    specs: tuple[CategorySpec, ...]
    lines: tuple[str, ...]  # collection line of a numbered extra category, "" for the base ones
    type_no: np.ndarray
    launch_day: np.ndarray  # 0 for categories present from the start
    latent: np.ndarray  # (C, LATENT_DIM)
    popularity: np.ndarray  # log prior of the category, beyond its size
    season: np.ndarray  # +1 summer, -1 winter
    basic: np.ndarray  # 0..1 repeat/multi-quantity propensity

    @property
    def late(self) -> np.ndarray:
        """Indices of the categories that launch during the period."""
        return np.flatnonzero(self.launch_day > 0)


@dataclass(frozen=True)
class Catalog:
    """All articles, in articles.csv order (sorted by article_id), with their hidden generative state."""

    categories: CategoryTable
    columns: dict[str, np.ndarray]  # articles.csv columns by name (object arrays for text)
    article_id: np.ndarray  # bytes S10
    category: np.ndarray  # category index per article
    launch_day: np.ndarray  # first day the article can be sold
    pre_age: np.ndarray  # days already on sale before day 0 (0 for articles launched in the period)
    latent: np.ndarray  # (A, LATENT_DIM)
    log_popularity: np.ndarray
    price_point: np.ndarray  # index into PRICE_POINTS


def category_names(n_categories: int) -> list[str]:
    """The first n product type names: the H&M list, then numbered extras ("Top 2", ...)."""
    base = vocab.CATEGORIES
    names = [c.name for c in base[:n_categories]]
    for c in range(len(base), n_categories):
        j = c - len(base)
        names.append(f"{base[j % len(base)].name} {2 + j // len(base)}")
    return names


def _late_count(n_categories: int) -> int:
    if n_categories >= 6:
        return max(2, round(LATE_SHARE * n_categories))
    return 1 if n_categories >= 3 else 0


def late_launch_window(days: int) -> tuple[int, int]:
    """First and last day (inclusive) on which a late category may launch."""
    lo = max(1, math.ceil(LATE_WINDOW[0] * days))
    hi = max(lo, min(days - 1, math.floor(LATE_WINDOW[1] * days)))
    return lo, hi


def build_categories(n_categories: int, days: int, rng: np.random.Generator) -> CategoryTable:
    """Categories with group + own latent components, late launches and size priors."""
    base = vocab.CATEGORIES
    specs = tuple(base[c % len(base)] for c in range(n_categories))
    lines = tuple("" if c < len(base) else vocab.COLLECTION_LINES[(c - len(base)) % len(vocab.COLLECTION_LINES)]
                  for c in range(n_categories))
    type_no = np.array([240 + c if c < len(base) else 500 + c for c in range(n_categories)], dtype=np.int64)

    group_of = np.array([vocab.PRODUCT_GROUPS.index(s.group) for s in specs])
    group_taste = rng.normal(size=(len(vocab.PRODUCT_GROUPS), vocab.LATENT_TASTE_DIMS))
    own_taste = rng.normal(size=(n_categories, vocab.LATENT_TASTE_DIMS))
    youth = np.array([s.youth for s in specs]) + rng.normal(0.0, 0.15, n_categories)
    latent = np.zeros((n_categories, vocab.LATENT_DIM))
    latent[:, vocab.LATENT_YOUTH] = CATEGORY_YOUTH_SCALE * youth
    latent[:, vocab.LATENT_GENDER] = [WOMENSWEAR_CATEGORY_GENDER if s.gender == "w" else 0.0 for s in specs]
    latent[:, vocab.LATENT_ONLINE] = rng.normal(0.0, 0.8, n_categories)
    latent[:, vocab.LATENT_TASTE_START:] = CATEGORY_TASTE_SCALE * (0.8 * group_taste[group_of] + 0.6 * own_taste)

    launch_day = np.zeros(n_categories, dtype=np.int64)
    n_late = _late_count(n_categories)
    if n_late:
        # Category 0 (Trousers, the biggest) always stays warm, so the shop has a backbone.
        late = rng.choice(np.arange(1, n_categories), size=n_late, replace=False)
        lo, hi = late_launch_window(days)
        launch_day[late] = rng.integers(lo, hi + 1, size=n_late)
    popularity = rng.normal(0.0, 0.3, n_categories)
    return CategoryTable(
        names=tuple(category_names(n_categories)), specs=specs, lines=lines, type_no=type_no,
        launch_day=launch_day, latent=latent, popularity=popularity,
        season=np.array([s.season for s in specs]), basic=np.array([s.basic for s in specs]),
    )


def _variant_counts(n_articles: int, n_categories: int, rng: np.random.Generator) -> np.ndarray:
    """Colour variants per product (1..5), summing to n_articles, with at least one product per category."""
    draws = rng.choice(np.arange(1, 6), size=n_articles, p=VARIANTS_PER_PRODUCT)
    cum = np.cumsum(draws)
    n_products = int(np.searchsorted(cum, n_articles)) + 1
    counts = draws[:n_products].copy()
    counts[-1] -= cum[n_products - 1] - n_articles
    if n_products >= n_categories:
        return counts
    # Few articles per category: spread them over exactly one product per category (at most 5 each).
    slots = rng.choice(n_categories * 4, size=n_articles - n_categories, replace=False)
    return 1 + np.bincount(slots // 4, minlength=n_categories)


def _pick_weighted(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    return rng.choice(len(weights), size=size, p=weights / weights.sum())


def _pick_distinct(rng: np.random.Generator, log_weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per row i, counts[i] distinct column indices drawn without replacement (Gumbel top-k), concatenated."""
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    order = np.argsort(-keys, axis=1, kind="stable")
    return order[np.arange(order.shape[1])[None, :] < counts[:, None]]


def _join_features(features: list[str]) -> str:
    if len(features) == 1:
        return features[0]
    return ", ".join(features[:-1]) + " and " + features[-1]


def _department(kind: str, garment_group: str, line: str) -> tuple[int, str]:
    by_kind = {"knit": "Knitwear", "shoes": "Shoes", "jewellery": "Jewellery", "bag": "Bags",
               "headwear": "Hats & Hair", "smallacc": "Small Accessories", "lingerie": "Casual Lingerie",
               "legwear": "Socks & Tights", "swim": "Swimwear", "night": "Nightwear"}
    by_group = {"Jersey Basic": "Jersey Basic", "Jersey Fancy": "Jersey Fancy", "Blouses": "Blouse",
                "Shirts": "Shirt", "Outdoor": "Outdoor", "Dressed": "Tailoring", "Trousers Denim": "Denim",
                "Shorts": "Shorts", "Skirts": "Skirt", "Dresses Ladies": "Dresses", "Trousers": "Trousers",
                "Socks and Tights": "Socks & Tights"}
    base = by_kind.get(kind) or by_group.get(garment_group, "Jersey Fancy")
    line_pos = "ABCDFGHIJ".index(line)
    return 1000 + 100 * line_pos + vocab.DEPARTMENT_BASES.index(base), vocab.LINE_PREFIX[line] + base


def _section(kind: str, garment_group: str, line: str, girl: bool) -> str:
    family = vocab.KIND_TO_LINE_FAMILY[kind]
    garment = family == "garment"
    if line == "A":
        if garment_group in ("Dressed", "Blouses", "Shirts"):
            return "Womens Tailoring"
        return "Womens Everyday Basics" if garment_group == "Jersey Basic" else "Womens Everyday Collection"
    if line == "B":
        if family == "swim":
            return "Womens Swimwear, beachwear"
        return "Womens Lingerie" if kind == "lingerie" else "Womens Nightwear, Socks & Tigh"
    if line == "C":
        if family == "shoes":
            return "Womens Shoes"
        return "Womens Big accessories" if kind == "bag" else "Womens Small accessories"
    if line == "D":
        if garment or family == "swim":
            return "Divided Basics" if garment_group == "Jersey Basic" else "Divided Collection"
        return "Divided Accessories"
    if line == "F":
        if garment:
            if garment_group == "Outdoor":
                return "Mens Outerwear"
            return "Contemporary Smart" if garment_group in ("Dressed", "Shirts") else "Contemporary Casual"
        if family == "shoes":
            return "Men Shoes"
        return "Men Accessories" if family in ("accessory", "jewellery") else "Men Underwear"
    if line == "G":
        return "Baby Essentials & Complements"
    if line == "H":
        return "Kids Girl" if girl else "Kids Boy"
    if line == "I":
        return "Young Girl" if girl else "Young Boy"
    return "Kids Accessories, Swimwear & D"


def build_catalog(n_articles: int, n_categories: int, days: int, rng: np.random.Generator) -> Catalog:
    """Generate every article: products in categories, colour variants, attributes, text, latent, launch."""
    cats = build_categories(n_categories, days, rng)
    counts = _variant_counts(n_articles, n_categories, rng)
    n_products = len(counts)

    size_prior = (np.arange(n_categories) + 1.0) ** -0.8 * rng.lognormal(0.0, 0.25, n_categories)
    prod_cat = np.concatenate([np.arange(n_categories),
                               _pick_weighted(rng, size_prior, n_products - n_categories)])
    prod_cat = prod_cat[rng.permutation(n_products)]

    # --- launch days: late categories at their launch, the rest mostly from day 0 ---
    prod_launch = np.where(rng.random(n_products) < WARM_LAUNCH_AT_START, 0,
                           rng.integers(1, max(2, days), n_products))
    first_of_cat = np.unique(prod_cat, return_index=True)[1]
    prod_launch[first_of_cat] = 0
    prod_launch = np.where(cats.launch_day[prod_cat] > 0, cats.launch_day[prod_cat], prod_launch)
    prod_pre_age = np.where(prod_launch == 0, rng.integers(0, MAX_PRE_AGE_DAYS, n_products), 0)

    # --- product attributes: per kind, the fit, material and feature words and their taste effects ---
    kinds = list(vocab.KINDS)
    prod_kind = np.array([kinds.index(s.kind) for s in cats.specs])[prod_cat]
    fit = np.zeros(n_products, dtype=np.int64)
    material = np.zeros(n_products, dtype=np.int64)
    feats = np.full((n_products, 3), -1, dtype=np.int64)
    closer = np.full(n_products, -1, dtype=np.int64)
    word_youth = np.zeros(n_products)
    word_taste = np.zeros((n_products, vocab.LATENT_TASTE_DIMS))
    premium = np.zeros(n_products, dtype=bool)
    denim = np.zeros(n_products, dtype=bool)
    for k, kind in enumerate(kinds):
        spec = vocab.KINDS[kind]
        fit_vec, mat_vec, feat_vec = (rng.normal(size=(len(table), vocab.LATENT_TASTE_DIMS))
                                      for table in (spec.fits, spec.materials, spec.features))
        rows = np.flatnonzero(prod_kind == k)
        if not len(rows):
            continue
        fit[rows] = f = rng.integers(0, len(spec.fits), len(rows))
        material[rows] = m = rng.integers(0, len(spec.materials), len(rows))
        n_feat = rng.choice([1, 2, 3], size=len(rows), p=[0.3, 0.45, 0.25])
        chosen = np.argsort(rng.random((len(rows), len(spec.features))), axis=1)[:, :3]
        used = np.arange(3)[None, :] < n_feat[:, None]
        feats[rows] = np.where(used, chosen, -1)
        closer[rows] = np.where(rng.random(len(rows)) < 0.6, rng.integers(0, len(spec.closers), len(rows)), -1)
        feat_y = np.array([w[1] for w in spec.features])
        word_youth[rows] = (np.array([w[1] for w in spec.fits])[f] + np.array([w[1] for w in spec.materials])[m]
                            + (feat_y[chosen] * used).sum(axis=1) / n_feat)
        word_taste[rows] = (fit_vec[f] + mat_vec[m]
                            + (feat_vec[chosen] * used[:, :, None]).sum(axis=1) / n_feat[:, None])
        mat_words = [w[0] for w in spec.materials]
        premium[rows] = np.array([any(p in w for p in PREMIUM_MATERIAL_WORDS) for w in mat_words])[m]
        denim[rows] = np.array(["denim" in w for w in mat_words])[m]

    plain = np.isin(prod_kind, [kinds.index(k) for k in vocab.PLAIN_KINDS])
    pattern_names = [p[1] for p in vocab.PATTERNS]
    pattern_w = np.array([p[2] for p in vocab.PATTERNS])
    plain_w = np.array([90.0 if p == "Solid" else 6.0 if p == "Glittering/Metallic" else 0.3 for p in pattern_names])
    pattern = np.where(plain, _pick_weighted(rng, plain_w, n_products), _pick_weighted(rng, pattern_w, n_products))

    # Each product is sold in one line (index); womenswear-only types never in Menswear.
    family = np.array([vocab.KIND_TO_LINE_FAMILY[k] for k in kinds])[prod_kind]
    womens = np.array([s.gender == "w" for s in cats.specs])[prod_cat]
    line = np.empty(n_products, dtype="<U1")
    for fam, options in vocab.KIND_INDEXES.items():
        for only_women in (True, False):
            rows = np.flatnonzero((family == fam) & (womens == only_women))
            opts = [(code, w) for code, w in options if not (only_women and code == "F")]
            if len(rows):
                codes = np.array([o[0] for o in opts])
                line[rows] = codes[_pick_weighted(rng, np.array([o[1] for o in opts]), len(rows))]
    girl = rng.random(n_products) < 0.55
    gg_pick = rng.random(n_products)
    noun_pick = rng.random(n_products)
    style = rng.integers(0, len(vocab.STYLE_NAMES), n_products)

    # --- prices: a point inside the category range, cheaper lines one step down, premium materials up ---
    lo_idx = np.array([np.searchsorted(PRICE_POINTS, s.price_lo - 1e-6) for s in cats.specs])
    hi_idx = np.array([np.searchsorted(PRICE_POINTS, s.price_hi + 1e-6) - 1 for s in cats.specs])
    span = hi_idx[prod_cat] - lo_idx[prod_cat] + 1
    prod_price = lo_idx[prod_cat] + np.minimum((rng.random(n_products) * span).astype(np.int64), span - 1)
    prod_price += np.where(np.isin(line, CHEAP_LINES), -1, 0) + premium.astype(np.int64)
    prod_price = np.clip(prod_price, 0, len(PRICE_POINTS) - 1)

    # --- latent: category latent + line + attribute words + product noise ---
    index_youth = {code: v[3] for code, v in vocab.INDEXES.items()}
    index_gender = {code: v[4] for code, v in vocab.INDEXES.items()}
    index_kids = {code: v[5] for code, v in vocab.INDEXES.items()}
    pattern_vec = rng.normal(size=(len(vocab.PATTERNS) + 1, vocab.LATENT_TASTE_DIMS))
    pattern_key = np.where(denim, len(vocab.PATTERNS), pattern)
    log_mid_price = np.log(np.sqrt([s.price_lo * s.price_hi for s in cats.specs]))
    prod_latent = cats.latent[prod_cat].copy()
    prod_latent[:, vocab.LATENT_YOUTH] += (ARTICLE_YOUTH_LINE * np.array([index_youth[x] for x in line])
                                           + ARTICLE_YOUTH_WORDS * word_youth)
    prod_latent[:, vocab.LATENT_GENDER] += np.array([index_gender[x] for x in line])
    prod_latent[:, vocab.LATENT_KIDS] += np.where([index_kids[x] for x in line], *ARTICLE_KIDS)
    prod_latent[:, vocab.LATENT_PRICE] = -(np.log(PRICE_POINTS[prod_price]) - log_mid_price[prod_cat])
    prod_latent[:, vocab.LATENT_TASTE_START:] += TASTE_SCALE * (
        0.5 * (word_taste + pattern_vec[pattern_key])
        + 0.7 * rng.normal(size=(n_products, vocab.LATENT_TASTE_DIMS)))

    # --- text: prod_name, detail_desc, department, section (one loop over products, not over rows) ---
    prod_name = np.empty(n_products, dtype=object)
    desc = np.empty(n_products, dtype=object)
    dept_no = np.empty(n_products, dtype=np.int64)
    dept_name = np.empty(n_products, dtype=object)
    section = np.empty(n_products, dtype=object)
    garment_group = np.empty(n_products, dtype=object)
    for i in range(n_products):
        c = prod_cat[i]
        s = cats.specs[c]
        words = vocab.KINDS[s.kind]
        noun = s.nouns[int(noun_pick[i] * len(s.nouns))]
        gg = s.garment_groups[int(gg_pick[i] * len(s.garment_groups))]
        pattern_word = "" if denim[i] else vocab.PATTERNS[pattern[i]][3]
        mat_word = words.materials[material[i]][0]
        material_phrase = f"{pattern_word} {mat_word}" if pattern_word else mat_word
        features = _join_features([words.features[f][0] for f in feats[i] if f >= 0])
        text = f"{words.fits[fit[i]][0]} {noun} in {material_phrase} with {features}."
        if closer[i] >= 0:
            text += " " + words.closers[closer[i]]
        if cats.lines[c]:
            text += f" Part of our {cats.lines[c]} line."
        desc[i] = text
        prod_name[i] = " ".join([vocab.STYLE_NAMES[style[i]]] + ([cats.lines[c]] if cats.lines[c] else []) + [noun])
        garment_group[i] = gg
        dept_no[i], dept_name[i] = _department(s.kind, gg, line[i])
        section[i] = _section(s.kind, gg, line[i], bool(girl[i]))

    # --- colour variants ---
    colour_w = np.array([c[6] for c in vocab.COLOURS])
    metal_w = np.where(np.isin([c[1] for c in vocab.COLOURS], vocab.METAL_COLOURS), vocab.METAL_WEIGHT, colour_w)
    jewellery = prod_kind == kinds.index("jewellery")
    log_cw = np.where(jewellery[:, None], np.log(metal_w)[None, :], np.log(colour_w)[None, :])
    colours = _pick_distinct(rng, log_cw, counts)
    colour_vec = rng.normal(size=(len(vocab.COLOURS), vocab.LATENT_TASTE_DIMS))

    art_prod = np.repeat(np.arange(n_products), counts)
    n = len(art_prod)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    gaps = rng.geometric(0.6, n)
    gaps[starts] = np.where(rng.random(n_products) < 0.7, 1, rng.integers(2, 12, n_products))
    csum = np.cumsum(gaps)
    variant_no = np.minimum(csum - np.repeat(csum[starts] - gaps[starts], counts), 999)

    code_space = 900_000 if n_products < 300_000 else 9_900_000  # 6 digits like H&M, 7 for huge shops
    codes = 100_000 + np.sort(rng.choice(code_space, size=n_products, replace=False))
    prod_code = codes[rng.permutation(n_products)]

    variant_late = rng.random(n) < 0.15
    variant_late[starts] = False  # a product launches with its first colour; others may follow later
    art_launch = prod_launch[art_prod] + np.where(variant_late, rng.integers(1, 30, n), 0)
    art_launch = np.where(cats.launch_day[prod_cat[art_prod]] > 0, prod_launch[art_prod],
                          np.minimum(art_launch, max(days - 1, 0)))
    art_pre_age = np.where(art_launch == 0, prod_pre_age[art_prod], 0)
    price_shift = np.where(rng.random(n) < 0.05, rng.choice([-1, 1], n), 0)
    art_price = np.clip(prod_price[art_prod] + price_shift, 0, len(PRICE_POINTS) - 1)

    colour_y = np.array([c[7] for c in vocab.COLOURS])
    latent = prod_latent[art_prod]
    latent[:, vocab.LATENT_YOUTH] += 0.2 * colour_y[colours]
    latent[:, vocab.LATENT_TASTE_START:] += TASTE_SCALE * (
        0.4 * colour_vec[colours] + 0.3 * rng.normal(size=(n, vocab.LATENT_TASTE_DIMS)))
    log_pop = (rng.normal(0.0, 1.2, n_products)[art_prod] + rng.normal(0.0, 0.4, n)
               + 0.35 * np.log(colour_w[colours] / colour_w.mean()))
    desc_missing = rng.random(n) < MISSING_DESC_RATE

    # --- assemble in article_id order ---
    numeric_id = prod_code[art_prod].astype(np.int64) * 1000 + variant_no
    order = np.argsort(numeric_id, kind="stable")
    art_prod, colours, numeric_id = art_prod[order], colours[order], numeric_id[order]
    pcat = prod_cat[art_prod]
    col = vocab.COLOURS
    article_id = _digits(numeric_id, 10)
    columns: dict[str, np.ndarray] = {
        "article_id": article_id.astype("U10").astype(object),
        "product_code": prod_code[art_prod],
        "prod_name": prod_name[art_prod],
        "product_type_no": cats.type_no[pcat],
        "product_type_name": np.array(cats.names, dtype=object)[pcat],
        "product_group_name": np.array([s.group for s in cats.specs], dtype=object)[pcat],
        "graphical_appearance_no": np.where(denim, vocab.DENIM_PATTERN[0],
                                            np.array([p[0] for p in vocab.PATTERNS])[pattern])[art_prod],
        "graphical_appearance_name": np.where(denim, vocab.DENIM_PATTERN[1],
                                              np.array([p[1] for p in vocab.PATTERNS], dtype=object)[pattern]
                                              )[art_prod],
        "colour_group_code": np.array([c[0] for c in col])[colours],
        "colour_group_name": np.array([c[1] for c in col], dtype=object)[colours],
        "perceived_colour_value_id": np.array([c[2] for c in col])[colours],
        "perceived_colour_value_name": np.array([c[3] for c in col], dtype=object)[colours],
        "perceived_colour_master_id": np.array([c[4] for c in col])[colours],
        "perceived_colour_master_name": np.array([c[5] for c in col], dtype=object)[colours],
        "department_no": dept_no[art_prod],
        "department_name": dept_name[art_prod],
        "index_code": line.astype(object)[art_prod],
        "index_name": np.array([vocab.INDEXES[x][0] for x in line], dtype=object)[art_prod],
        "index_group_no": np.array([vocab.INDEXES[x][1] for x in line])[art_prod],
        "index_group_name": np.array([vocab.INDEXES[x][2] for x in line], dtype=object)[art_prod],
        "section_no": np.array([vocab.SECTIONS[x] for x in section])[art_prod],
        "section_name": section[art_prod],
        "garment_group_no": np.array([vocab.GARMENT_GROUPS[x] for x in garment_group])[art_prod],
        "garment_group_name": garment_group[art_prod],
        "detail_desc": _blank(desc[art_prod], desc_missing[order]),
    }
    return Catalog(
        categories=cats, columns=columns, article_id=article_id, category=pcat,
        launch_day=art_launch[order], pre_age=art_pre_age[order], latent=latent[order],
        log_popularity=log_pop[order], price_point=art_price[order],
    )


def _blank(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """A copy of an object array with None where missing."""
    out = values.copy()
    out[missing] = None
    return out


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal strings of non-negative integers, as fixed-width bytes (vectorised)."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers[None, :]) % 10 + ord("0")
    return np.ascontiguousarray(digits.astype(np.uint8)).view(f"S{width}").ravel()
