"""Nightly recommendations: the scoring core (``scoring``), the serving plan and per-batch scoring (``serve``), the
Spark job (``job``), the output checks (``checks``) and the storefront export (``export``).

``scoring`` and ``serve`` need only torch, numpy and pyarrow (they run in Spark Python workers or on a GPU driver).
"""

from .scoring import TopN, top_n_blocked

__all__ = ["TopN", "top_n_blocked"]
