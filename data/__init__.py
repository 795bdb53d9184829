"""Omniglot for the meta-learning kit: acquire, verify, process, cache and split.

Example:
    >>> from data import load_splits
    >>> splits = load_splits()  # {"train", "val", "test"} -> Split
    >>> splits["train"].images.shape  # float32 [C, 20, 784], ink 1.0, paper 0.0
    (1100, 20, 784)
"""

from .omniglot import (
    ARCHIVES,
    DEFAULT_URL_BASE,
    EXPECTED,
    ArchiveInfo,
    Omniglot,
    OmniglotDataError,
    acquire_archive,
    build_cache,
    cache_dir,
    load_omniglot,
    process_png,
    verify_archive,
)
from .splits import SPLIT_SEED, SPLITS, Split, load_splits, split_names

__all__ = [
    "ARCHIVES",
    "DEFAULT_URL_BASE",
    "EXPECTED",
    "SPLITS",
    "SPLIT_SEED",
    "ArchiveInfo",
    "Omniglot",
    "OmniglotDataError",
    "Split",
    "acquire_archive",
    "build_cache",
    "cache_dir",
    "load_omniglot",
    "load_splits",
    "process_png",
    "split_names",
    "verify_archive",
]
