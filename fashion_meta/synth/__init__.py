"""Synthetic shop generator writing the H&M Kaggle file format (articles, customers, transactions)."""

from fashion_meta.synth.generator import (
    GenerateSummary,
    LateCategory,
    ShopSpec,
    generate_shop,
    launch_calendar,
    validate_spec,
)

__all__ = ["GenerateSummary", "LateCategory", "ShopSpec", "generate_shop", "launch_calendar", "validate_spec"]
