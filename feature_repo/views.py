"""One feature view per feature table; TTLs as the feature tables document them (fashion_meta/features/job.py).

Daily tables: 2 days (a value stamped D+1 00:00 is served until D+3 00:00, so one missed night is tolerated,
two are not). Text vectors: no TTL (ttl=0), a changed text adds a newer row.
"""

from datetime import timedelta

from feast import FeatureView, Field
from feast.types import Array, Bool, Float32, Float64, Int32, Int64, String

from entities import article, category, customer, user_group
from sources import (
    article_daily_source,
    article_text_embedding_source,
    category_daily_source,
    customer_daily_source,
    group_category_daily_source,
)

DAILY_TTL = timedelta(days=2)
_BANDS = (("le24", "<=24"), ("25_34", "25-34"), ("35_44", "35-44"), ("45_54", "45-54"), ("55plus", "55+"),
          ("unknown", "unknown age"))

customer_daily = FeatureView(
    name="customer_daily",
    entities=[customer],
    ttl=DAILY_TTL,
    source=customer_daily_source,
    online=True,
    description="The customer's activity up to day D (stamped D+1 00:00 UTC); rows for active customers only.",
    schema=[
        Field(name="user_group", dtype=String, description="Age band x dominant channel as of D"),
        Field(name="age_band", dtype=String, description="<=24, 25-34, 35-44, 45-54, 55+ or unknown"),
        Field(name="channel", dtype=String, description="Dominant channel over 90 days: online, store or unknown"),
        Field(name="age", dtype=Int32, description="customers.csv age; null when missing or implausible"),
        Field(name="purchases_7d", dtype=Int64, description="Purchases in the 7 days up to D"),
        Field(name="purchases_28d", dtype=Int64, description="Purchases in the 28 days up to D"),
        Field(name="purchases_90d", dtype=Int64, description="Purchases in the 90 days up to D"),
        Field(name="online_share_90d", dtype=Float64, description="Share of online purchases over 90 days"),
        Field(name="days_since_last_purchase", dtype=Int32, description="Days from the last purchase to D"),
        Field(name="distinct_categories_90d", dtype=Int64, description="Categories bought from in 90 days"),
        Field(name="avg_price_90d", dtype=Float64, description="Mean price paid over 90 days"),
        Field(name="history_vector", dtype=Array(Float32),
              description="Mean text vector of the articles bought in 90 days, L2-normalised (null: none known)"),
    ],
)

article_daily = FeatureView(
    name="article_daily",
    entities=[article],
    ttl=DAILY_TTL,
    source=article_daily_source,
    online=True,
    description="An in-stock article's sales up to day D (stamped D+1 00:00 UTC); rows only while in stock.",
    schema=[
        Field(name="category", dtype=String, description="The article's category"),
        Field(name="product_code", dtype=Int32, description="Product code shared by colour variants"),
        Field(name="price_28d", dtype=Float64, description="Mean price over 28 days (null: no sale)"),
        Field(name="price_level", dtype=Float64, description="price_28d relative to the category's median"),
        Field(name="sales_7d", dtype=Int64, description="Units sold in the 7 days up to D"),
        Field(name="sales_28d", dtype=Int64, description="Units sold in the 28 days up to D"),
        Field(name="days_since_first_sale", dtype=Int32, description="Days since the first sale (null: never sold)"),
        Field(name="days_since_first_seen", dtype=Int32, description="Days since ingestion first saw the article"),
    ]
    + [Field(name=f"buyers_28d_{suffix}", dtype=Int64, description=f"Distinct buyers aged {label} in 28 days")
       for suffix, label in _BANDS]
    + [
        Field(name="buyers_28d_online", dtype=Int64, description="Distinct online buyers in 28 days"),
        Field(name="buyers_28d_store", dtype=Int64, description="Distinct store buyers in 28 days"),
    ],
)

article_text_embedding = FeatureView(
    name="article_text_embedding",
    entities=[article],
    ttl=timedelta(0),
    source=article_text_embedding_source,
    online=True,
    description="Text-encoder vector of the article's name, attributes and description (one encoder).",
    schema=[
        Field(name="text_hash", dtype=String, description="sha2-256 of the encoded text"),
        Field(name="embedding", dtype=Array(Float32), description="Mean-pooled, L2-normalised encoder output"),
    ],
)

category_daily = FeatureView(
    name="category_daily",
    entities=[category],
    ttl=DAILY_TTL,
    source=category_daily_source,
    online=True,
    description="A category's size and age as of day D (stamped D+1 00:00 UTC).",
    schema=[
        Field(name="articles_known", dtype=Int64, description="Articles of the category known by D"),
        Field(name="articles_in_stock", dtype=Int64, description="Articles in stock on D"),
        Field(name="purchases_7d", dtype=Int64, description="Purchases in the 7 days up to D"),
        Field(name="purchases_28d", dtype=Int64, description="Purchases in the 28 days up to D"),
        Field(name="purchases_total", dtype=Int64, description="Purchases up to D"),
        Field(name="age_days", dtype=Int32, description="Days since the category's first sale (null: none)"),
        Field(name="is_new", dtype=Bool, description="New by the DESIGN.md rule as of D"),
    ],
)

group_category_daily = FeatureView(
    name="group_category_daily",
    entities=[user_group, category],
    ttl=DAILY_TTL,
    source=group_category_daily_source,
    online=True,
    description="A user group's interaction with a category up to day D (stamped D+1 00:00 UTC).",
    schema=[
        Field(name="purchases_7d", dtype=Int64, description="The group's purchases in the category, 7 days"),
        Field(name="purchases_28d", dtype=Int64, description="The group's purchases in the category, 28 days"),
        Field(name="buyers_7d", dtype=Int64, description="Distinct buyers of the group in the category, 7 days"),
        Field(name="buyers_28d", dtype=Int64, description="Distinct buyers of the group in the category, 28 days"),
        Field(name="group_share_of_category_28d", dtype=Float64, description="The group's share of the category"),
        Field(name="category_share_of_group_28d", dtype=Float64, description="The category's share of the group"),
        Field(name="trend_7d_vs_28d", dtype=Float64, description="7-day purchases relative to the 28-day rate"),
        Field(name="affinity", dtype=Float64, description="Smoothed category share of the group vs overall"),
    ],
)
