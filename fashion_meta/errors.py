"""Errors the CLI turns into one clear line and an exit code, never a traceback."""

from __future__ import annotations


class FashionMetaError(Exception):
    """Base of all expected failures; ``exit_code`` is what the CLI returns."""

    exit_code = 1


class InputError(FashionMetaError):
    """The input cannot be used at all (missing file, missing required column, empty file): nothing is written."""

    exit_code = 2


class UsageError(FashionMetaError):
    """An invalid option or option combination."""

    exit_code = 2
