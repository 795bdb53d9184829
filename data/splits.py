"""Meta-train / meta-val / meta-test splits of the Omniglot characters.

Shapes: C characters in a split, 20 drawings each, 784 = 28*28 pixels: images are `[C, 20, 784]`.

Two splits, both the same on every machine (the characters are sorted by path before a fixed-seed
shuffle, and `SPLIT_SEED` never changes):

- "default": all 1623 characters shuffled with `np.random.default_rng(SPLIT_SEED).permutation`,
  then the first 1100 are meta-train, the next 100 meta-val and the last 423 meta-test.
  Characters of one alphabet can land in different splits.
- "alphabet": meta-test is all 659 characters of `images_evaluation` (20 alphabets never seen
  in training). The 30 background alphabets, sorted by name, are shuffled with the same seed;
  whole alphabets go to meta-val in that order until it holds at least 100 characters, and the
  remaining alphabets are meta-train. No alphabet is shared between splits.

Within each split the characters keep the sorted path order (a split is a set of characters;
the order carries no meaning).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .omniglot import load_omniglot

SPLIT_SEED = 0  # fixed forever: changing it changes which characters are meta-test
SPLITS = ("default", "alphabet")
DEFAULT_SIZES = {"train": 1100, "val": 100, "test": 423}
MIN_VAL_CHARACTERS = 100  # "alphabet" split: meta-val takes whole alphabets up to at least this


@dataclass
class Split:
    """The characters of one split: `images` float32 `[C, 20, 784]` (uint8, ink 255, when
    loaded raw) and their `names`."""

    images: np.ndarray  # float32 [C, 20, 784] (uint8 when raw)
    names: list[str]


def split_names() -> tuple[str, ...]:
    """The valid split names: `SPLITS`."""
    return SPLITS


def split_indices(names: list[str], split: str = "default") -> dict[str, np.ndarray]:
    """Indices into `names` (the sorted character paths) for "train", "val" and "test"."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    if names != sorted(names):
        raise ValueError("names must be sorted by path so that the split is reproducible")
    rng = np.random.default_rng(SPLIT_SEED)
    if split == "default":
        if len(names) != sum(DEFAULT_SIZES.values()):
            raise ValueError(f"the default split needs 1623 characters, got {len(names)}")
        order = rng.permutation(len(names))
        n_train, n_val = DEFAULT_SIZES["train"], DEFAULT_SIZES["val"]
        parts = {
            "train": order[:n_train],
            "val": order[n_train : n_train + n_val],
            "test": order[n_train + n_val :],
        }
    else:
        alphabet_of = [n.rsplit("/", 1)[0] for n in names]  # images_background/Latin
        background = sorted({a for a in alphabet_of if a.startswith("images_background/")})
        val_alphabets: set[str] = set()
        count = 0
        for i in rng.permutation(len(background)):
            if count >= MIN_VAL_CHARACTERS:
                break
            val_alphabets.add(background[i])
            count += alphabet_of.count(background[i])
        parts = {"train": [], "val": [], "test": []}
        for i, alphabet in enumerate(alphabet_of):
            if not alphabet.startswith("images_background/"):
                parts["test"].append(i)
            elif alphabet in val_alphabets:
                parts["val"].append(i)
            else:
                parts["train"].append(i)
    return {key: np.sort(np.asarray(idx, dtype=np.int64)) for key, idx in parts.items()}


def load_splits(
    split: str = "default",
    *,
    cache: str | os.PathLike | None = None,
    source: str | os.PathLike | None = None,
    progress: bool = True,
    raw: bool = False,
) -> dict[str, Split]:
    """Load Omniglot (building the cache on first use) and split it.

    Returns `{"train", "val", "test"}` -> `Split` with images float32 `[C, 20, 784]`;
    for "default", C = 1100, 100 and 423. `raw=True` keeps the cache's uint8 pixels (a
    quarter of the memory; `data.as_pixels` converts any part of them), as the grader does.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    data = load_omniglot(cache, source=source, progress=progress, raw=raw)
    return {
        key: Split(images=data.images[idx], names=[data.names[i] for i in idx])  # [C, 20, 784]
        for key, idx in split_indices(data.names, split).items()
    }
