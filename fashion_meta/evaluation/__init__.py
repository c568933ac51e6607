"""Offline cold-start evaluation (DESIGN.md, Evaluation protocol)."""
