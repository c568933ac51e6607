"""Nightly recommendation job: the scoring core (``scoring``) that turns customer and article vectors into top-N lists.

Needs only torch and numpy, like ``fashion_meta.model``.
"""

from .scoring import TopN, top_n_blocked

__all__ = ["TopN", "top_n_blocked"]
