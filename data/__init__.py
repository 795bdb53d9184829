"""Omniglot for the meta-learning kit: acquire, verify, process, cache and split.

Example:
    >>> from data import load_splits
    >>> splits = load_splits()  # {"train", "val", "test"} -> Split
    >>> splits["train"].images.shape  # float32 [C, 20, 784], ink 1.0, paper 0.0
    (1100, 20, 784)
"""

from .archives import (
    ARCHIVES,
    DEFAULT_URL_BASE,
    EXPECTED,
    EXPECTED_RUNS,
    LAKE_RUNS,
    ArchiveInfo,
    OmniglotDataError,
    acquire_archive,
    cache_dir,
    verify_archive,
)
from .omniglot import Omniglot, as_pixels, build_cache, load_omniglot, process_png
from .splits import SPLIT_SEED, SPLITS, Split, load_splits, split_names

__all__ = [
    "ARCHIVES",
    "DEFAULT_URL_BASE",
    "EXPECTED",
    "EXPECTED_RUNS",
    "LAKE_RUNS",
    "SPLITS",
    "SPLIT_SEED",
    "ArchiveInfo",
    "Omniglot",
    "OmniglotDataError",
    "Split",
    "acquire_archive",
    "as_pixels",
    "build_cache",
    "cache_dir",
    "load_omniglot",
    "load_splits",
    "process_png",
    "split_names",
    "verify_archive",
]
