"""Names and defaults shared by every stage: table paths, column names, time zone, vocabulary."""

from __future__ import annotations

TIME_ZONE = "UTC"

# --- input files (H&M Personalized Fashion Recommendations format) ---
ARTICLES_FILE = "articles"
CUSTOMERS_FILE = "customers"
TRANSACTIONS_FILE = "transactions_train"
INPUT_FILES = (ARTICLES_FILE, CUSTOMERS_FILE, TRANSACTIONS_FILE)

ARTICLE_COLUMNS = (
    "article_id",
    "product_code",
    "prod_name",
    "product_type_no",
    "product_type_name",
    "product_group_name",
    "graphical_appearance_no",
    "graphical_appearance_name",
    "colour_group_code",
    "colour_group_name",
    "perceived_colour_value_id",
    "perceived_colour_value_name",
    "perceived_colour_master_id",
    "perceived_colour_master_name",
    "department_no",
    "department_name",
    "index_code",
    "index_name",
    "index_group_no",
    "index_group_name",
    "section_no",
    "section_name",
    "garment_group_no",
    "garment_group_name",
    "detail_desc",
)
CUSTOMER_COLUMNS = (
    "customer_id",
    "FN",
    "Active",
    "club_member_status",
    "fashion_news_frequency",
    "age",
    "postal_code",
)
TRANSACTION_COLUMNS = ("t_dat", "customer_id", "article_id", "price", "sales_channel_id")

# Columns without which a file cannot be ingested at all (exit code 2, nothing written).
REQUIRED_COLUMNS = {
    ARTICLES_FILE: ("article_id", "product_code", "prod_name", "product_type_name", "product_group_name"),
    CUSTOMERS_FILE: ("customer_id", "age"),
    TRANSACTIONS_FILE: TRANSACTION_COLUMNS,
}

ARTICLE_ID_LENGTH = 10
CUSTOMER_ID_LENGTH = 64
SALES_CHANNEL_STORE = 1
SALES_CHANNEL_ONLINE = 2

# --- lake tables (relative to the lake root) ---
BRONZE_ARTICLES = "bronze/articles"
BRONZE_CUSTOMERS = "bronze/customers"
BRONZE_TRANSACTIONS = "bronze/transactions"
BRONZE_REJECTS = "bronze/rejects"
FEATURES_CUSTOMER_DAILY = "features/customer_daily"
FEATURES_ARTICLE_DAILY = "features/article_daily"
FEATURES_ARTICLE_TEXT = "features/article_text_embedding"
FEATURES_GROUP_CATEGORY_DAILY = "features/group_category_daily"
FEATURES_CATEGORY_DAILY = "features/category_daily"
FEATURES_COMPUTED_DAYS = "features/computed_days"
TASKS = "tasks"
RECOMMENDATIONS = "recommendations"
RUN_LOG = "ops/run_log"

# --- vocabulary (DESIGN.md) ---
AGE_BANDS = ((None, 24, "<=24"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 54, "45-54"), (55, None, "55+"))
AGE_UNKNOWN = "unknown"
MIN_PLAUSIBLE_AGE = 14
MAX_PLAUSIBLE_AGE = 100
CHANNEL_STORE = "store"
CHANNEL_ONLINE = "online"
CHANNEL_UNKNOWN = "unknown"
SERVING_MODES = ("warm", "meta_adapted", "transferred", "fallback")
