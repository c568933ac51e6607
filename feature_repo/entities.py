"""Entities: customer, article, user group, category (DESIGN.md Vocabulary), each with an explicit join key."""

from feast import Entity, ValueType

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.STRING,
    description="A shop customer (customers.csv customer_id, 64 hex characters).",
)

article = Entity(
    name="article",
    join_keys=["article_id"],
    value_type=ValueType.STRING,
    description="An article (articles.csv article_id, 10 digits with its leading zero).",
)

user_group = Entity(
    name="user_group",
    join_keys=["user_group"],
    value_type=ValueType.STRING,
    description='Age band x dominant sales channel, e.g. "25-34|online" or "unknown|store".',
)

category = Entity(
    name="category",
    join_keys=["category"],
    value_type=ValueType.STRING,
    description="A product category (product_type_name by default; see [vocabulary] category_column).",
)
