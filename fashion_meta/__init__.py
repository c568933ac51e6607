"""fashion-meta: a nightly, feature-store-backed cold-start recommender for apparel shops.

Kept import-light on purpose: ``python -m fashion_meta.bootstrap`` runs on a bare Python before any
dependency is installed, and the CLI imports Spark, Feast and torch only in the stages that need them.
"""

__version__ = "0.1.0"
