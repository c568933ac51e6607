"""The synthetic customers: H&M-like profile columns plus hidden taste, channel preference and activity."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashion_meta import constants
from fashion_meta.synth import vocab

# Age: a mixture like H&M's (a peak in the early twenties, a broad one around fifty).
AGE_MIXTURE = ((0.40, 23.0, 3.5), (0.15, 34.0, 5.0), (0.45, 50.0, 12.0))  # (weight, mean, sd)
MIN_AGE, MAX_AGE = 16, 95
MISSING_AGE_RATE = 0.011
IMPLAUSIBLE_AGE_RATE = 0.0005
IMPLAUSIBLE_AGES = (1, 5, 8, 110, 120)

CLUB_STATUS = (("ACTIVE", 0.926), ("PRE-CREATE", 0.068), ("LEFT CLUB", 0.0005), (None, 0.0055))
FN_RATE = 0.35
DORMANT_SHARE = 0.22  # customers who almost never buy
DORMANT_FACTOR = 0.04
ACTIVITY_SIGMA = 1.0  # lognormal spread of shopping rates
MALE_SHARE = 0.11
BAND_TASTE = 0.6  # per-dimension spread of the age-band taste means
PERSONAL_TASTE = 0.8  # per-dimension spread of individual taste around the band mean

HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


@dataclass(frozen=True)
class Population:
    """All customers, in customers.csv order (sorted by customer_id), with their hidden generative state."""

    customer_id: np.ndarray  # bytes S64
    columns: dict[str, np.ndarray]  # customers.csv columns (object arrays, None = missing)
    age: np.ndarray  # true age (the reported one may be missing or implausible)
    age_band: np.ndarray  # index into constants.AGE_BANDS of the true age
    latent: np.ndarray  # (N, LATENT_DIM)
    activity: np.ndarray  # relative shopping rate
    online: np.ndarray  # probability that a shopping trip is online


def random_hex_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """n random 64-character lowercase hex ids (256 random bits each) as bytes S64."""
    raw = np.frombuffer(rng.bytes(32 * n), dtype=np.uint8).reshape(n, 32)
    nibbles = np.stack([raw >> 4, raw & 0x0F], axis=2).reshape(n, 64)
    return np.ascontiguousarray(HEX[nibbles]).view("S64").ravel()


def age_band_index(age: np.ndarray) -> np.ndarray:
    """Index into constants.AGE_BANDS for each age."""
    uppers = [hi for _, hi, _ in constants.AGE_BANDS if hi is not None]
    return np.searchsorted(np.array(uppers), age, side="left")


def _choice(rng: np.random.Generator, table: tuple, n: int) -> np.ndarray:
    values = np.array([v for v, _ in table], dtype=object)
    weights = np.array([w for _, w in table])
    return values[rng.choice(len(values), size=n, p=weights / weights.sum())]


def _flag(values: np.ndarray) -> np.ndarray:
    """H&M's newsletter flags: "1.0" where set, missing otherwise."""
    out = np.full(len(values), None, dtype=object)
    out[values] = "1.0"
    return out


def build_population(n_customers: int, rng: np.random.Generator) -> Population:
    """Generate customers: ids, profile columns with realistic gaps, taste vectors and activity."""
    n = n_customers
    ids = np.sort(random_hex_ids(n, rng))
    n_postal = max(1, n // 3)
    postal_ids = random_hex_ids(n_postal, rng)
    postal_w = rng.lognormal(0.0, 1.0, n_postal)
    postal_w[0] = 0.08 * postal_w.sum()  # one code shared by many (like H&M's placeholder postal code)
    postal = postal_ids[rng.choice(n_postal, size=n, p=postal_w / postal_w.sum())]

    comp = rng.choice(len(AGE_MIXTURE), size=n, p=[m[0] for m in AGE_MIXTURE])
    means = np.array([m[1] for m in AGE_MIXTURE])[comp]
    sds = np.array([m[2] for m in AGE_MIXTURE])[comp]
    age = np.clip(np.rint(rng.normal(means, sds)), MIN_AGE, MAX_AGE).astype(np.int64)
    band = age_band_index(age)
    reported_age = age.astype(object)
    odd = rng.random(n) < IMPLAUSIBLE_AGE_RATE
    odd_value = np.array(IMPLAUSIBLE_AGES, dtype=object)[rng.integers(0, len(IMPLAUSIBLE_AGES), n)]
    reported_age[odd] = odd_value[odd]
    reported_age[rng.random(n) < MISSING_AGE_RATE] = None

    club = _choice(rng, CLUB_STATUS, n)
    fn = rng.random(n) < FN_RATE
    active = np.where(fn, rng.random(n) < 0.97, rng.random(n) < 0.005)
    news = np.where(fn, _choice(rng, (("Regularly", 0.96), ("Monthly", 0.003), ("NONE", 0.037)), n),
                    _choice(rng, (("NONE", 0.985), (None, 0.015)), n))

    # --- hidden state: taste from the age band and channel, plus individual noise ---
    youth = np.clip((35.0 - age) / 12.0, -2.0, 1.6)
    online = 1.0 / (1.0 + np.exp(-(0.9 + 1.1 * youth + rng.normal(0.0, 1.0, n))))
    male = rng.random(n) < MALE_SHARE
    parent = rng.random(n) < np.where((age >= 28) & (age <= 46), 0.4, 0.06)
    # Band means move along an arc: neighbouring bands are alike, <=24 and 55+ nearly orthogonal.
    arc = rng.normal(0.0, BAND_TASTE, (2, vocab.LATENT_TASTE_DIMS))
    angle = np.linspace(0.0, np.pi / 2, len(constants.AGE_BANDS))
    band_taste = np.cos(angle)[:, None] * arc[0] + np.sin(angle)[:, None] * arc[1]
    band_taste -= band_taste.mean(axis=0)  # bands differ from each other, not from "everyone"
    channel_taste = rng.normal(0.0, 1.0, vocab.LATENT_TASTE_DIMS)
    latent = np.zeros((n, vocab.LATENT_DIM))
    latent[:, vocab.LATENT_YOUTH] = youth
    latent[:, vocab.LATENT_GENDER] = np.where(male, 1.0, -0.6)
    latent[:, vocab.LATENT_KIDS] = np.where(parent, 1.0, -1.0)
    latent[:, vocab.LATENT_PRICE] = 0.5 + 0.3 * youth + rng.normal(0.0, 0.3, n)
    latent[:, vocab.LATENT_ONLINE] = online - 0.5
    latent[:, vocab.LATENT_TASTE_START:] = (band_taste[band] + (online - 0.5)[:, None] * channel_taste
                                            + rng.normal(0.0, PERSONAL_TASTE, (n, vocab.LATENT_TASTE_DIMS)))

    activity = rng.lognormal(0.0, ACTIVITY_SIGMA, n)
    activity *= np.where(rng.random(n) < DORMANT_SHARE, DORMANT_FACTOR, 1.0)
    activity *= np.select([club == "LEFT CLUB", club == "PRE-CREATE"], [0.15, 0.6], 1.0)
    activity *= np.where(fn, 1.25, 1.0) * (1.0 + 0.25 * np.exp(-(((age - 38.0) / 15.0) ** 2)))

    columns = {
        "customer_id": ids.astype("U64").astype(object),
        "FN": _flag(fn),
        "Active": _flag(active),
        "club_member_status": club,
        "fashion_news_frequency": news,
        "age": reported_age,
        "postal_code": postal.astype("U64").astype(object),
    }
    return Population(customer_id=ids, columns=columns, age=age, age_band=band, latent=latent,
                      activity=activity, online=online)
