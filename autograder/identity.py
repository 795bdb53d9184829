"""Images that encode their own (character, drawing) identity, for the episode checks.

A fake split `[C, D, 784]` in which image (c, d) holds c in pixel 0, d in pixel 1 and a
pattern unique to (c, d) in the other 782 pixels. Decoding a sampled image recovers exactly
which character and drawing it is, and a mixed or modified image decodes to -1, so the checks
prove disjointness, class consistency and label correctness for every task instead of guessing
from pixels.
"""

from __future__ import annotations

import math

import numpy as np

NUM_CHARACTERS = 9  # C: small, so that every character is reachable many times over
NUM_DRAWINGS = 6  # D: small, so that a sampler that lets a query repeat a support shows it

# The episode checks draw EPISODE_TASKS tasks with K = 2, N = 3 (both orders matter).
EPISODE_SHOTS, EPISODE_CLASSES, EPISODE_TASKS = 2, 3, 2000
# Query-shuffle test: each of the N*N (class, query position) frequencies and each of the N!
# query-order frequencies must lie within SHUFFLE_TOLERANCE of uniform (1/N, 1/N!). By
# Hoeffding's inequality a correct sampler leaves one such frequency out with probability at
# most 2 exp(-2 T t^2); the union bound over the 15 frequencies gives the false-failure rate:
SHUFFLE_TOLERANCE = 0.07
SHUFFLE_FREQUENCIES = EPISODE_CLASSES**2 + math.factorial(EPISODE_CLASSES)
SHUFFLE_FALSE_FAILURE = (
    SHUFFLE_FREQUENCIES * 2 * math.exp(-2 * EPISODE_TASKS * SHUFFLE_TOLERANCE**2)
)  # 9.3e-8
assert SHUFFLE_FALSE_FAILURE < 1e-6


def identity_images(
    num_characters: int = NUM_CHARACTERS, num_drawings: int = NUM_DRAWINGS
) -> np.ndarray:
    """float32 `[C, D, 784]`: image (c, d) is `[c, d, pattern(c, d)...]`, all values exact."""
    c, d = np.meshgrid(np.arange(num_characters), np.arange(num_drawings), indexing="ij")
    pixel = np.arange(782)
    pattern = ((c[..., None] * 31 + d[..., None] * 7 + pixel * 13) % 97) / 97.0  # [C, D, 782]
    images = np.concatenate([c[..., None], d[..., None], pattern], axis=-1)
    return images.astype(np.float32)  # [C, D, 784]


def decode(images: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Character and drawing of every image `[..., 784]` of `table [C, D, 784]`.

    Returns two integer arrays of shape `[...]`; both are -1 where an image is not exactly
    one of the table's images.
    """
    C, D, _ = table.shape
    flat = np.asarray(images, dtype=np.float64).reshape(-1, images.shape[-1])
    character = np.rint(flat[:, 0]).astype(np.int64)
    drawing = np.rint(flat[:, 1]).astype(np.int64)
    inside = (character >= 0) & (character < C) & (drawing >= 0) & (drawing < D)
    exact = np.zeros(len(flat), dtype=bool)
    exact[inside] = (table[character[inside], drawing[inside]] == flat[inside]).all(axis=1)
    character[~exact], drawing[~exact] = -1, -1
    shape = images.shape[:-1]
    return character.reshape(shape), drawing.reshape(shape)
