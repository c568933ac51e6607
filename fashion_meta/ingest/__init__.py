"""Ingestion of H&M-format files into the bronze Delta tables."""
