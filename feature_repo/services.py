"""Versioned feature services. meta_tasks_v1: the features of a meta-learning task row and of a scoring row.

Changing what a task dataset contains means a new service (meta_tasks_v2), never an edit of v1: trained models
record the service they were trained on.
"""

from feast import FeatureService

from views import article_daily, article_text_embedding, category_daily, customer_daily, group_category_daily

_CUSTOMER_NUMERIC = [
    "age", "purchases_7d", "purchases_28d", "purchases_90d", "online_share_90d", "days_since_last_purchase",
    "distinct_categories_90d", "avg_price_90d",
]
_ARTICLE_NUMERIC = [
    "price_28d", "price_level", "sales_7d", "sales_28d", "days_since_first_sale", "days_since_first_seen",
    "buyers_28d_le24", "buyers_28d_25_34", "buyers_28d_35_44", "buyers_28d_45_54", "buyers_28d_55plus",
    "buyers_28d_unknown", "buyers_28d_online", "buyers_28d_store",
]

meta_tasks_v1 = FeatureService(
    name="meta_tasks_v1",
    description="Customer, article, category and group x category features of a task or scoring row.",
    features=[
        customer_daily[_CUSTOMER_NUMERIC + ["history_vector"]],
        article_daily[_ARTICLE_NUMERIC],
        article_text_embedding[["embedding"]],
        category_daily[["articles_in_stock", "purchases_7d", "purchases_28d", "purchases_total", "age_days"]],
        group_category_daily[[
            "purchases_7d", "purchases_28d", "buyers_7d", "buyers_28d", "group_share_of_category_28d",
            "category_share_of_group_28d", "trend_7d_vs_28d", "affinity",
        ]],
    ],
    tags={"version": "1"},
)
