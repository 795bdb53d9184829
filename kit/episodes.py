"""Batches of N-way, K-shot tasks: the kit's vectorised sampler (never in the student package).

Letters: B tasks per batch, K shots, N classes, C characters in the split, D drawings per
character (20), 784 = 28 x 28 pixels.

`sample_tasks` draws B tasks at once with NumPy and returns exactly what B calls of the
reference `DataGenerator._sample` stacked by a `DataLoader` would return, with the same
distribution: N distinct characters, K+1 distinct drawings of each, support rows in class
order, the query row shuffled. The reference trainer uses it because a per-task Python loop
would take a noticeable share of each small training step on a CPU.

It does what the homework's `_sample` asks, so it stays out of the student package; the
DataLoader plumbing that any `DataGenerator` uses (`task_loader`, `reseed_worker`) lives in
`kit.loader`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

__all__ = ["TaskBatches", "sample_tasks"]


def sample_tasks(
    images: np.ndarray,
    num_classes: int,
    num_shots: int,
    batch_size: int,
    rng: np.random.Generator,
    groups: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a batch of tasks in one vectorised pass.

    Args:
        images: `[C, D, 784]`, the split's characters: float (returned as float32) or the
            cache's raw uint8 (returned as it is: `data.as_pixels` converts it).
        num_classes: N; num_shots: K; batch_size: B.
        rng: the only source of randomness.
        groups: None (the homework's tasks: N characters from all C), or groups of character
            indices, such as the characters of each alphabet: each task then takes its N
            characters from one group, chosen uniformly among those with at least N.

    Returns:
        images `[B, K+1, N, 784]` (float32, or uint8 from uint8) and one-hot labels
        `[B, K+1, N, N]` float32.
    """
    B, K, N = batch_size, num_shots, num_classes
    C, D, _ = images.shape
    if not 1 <= N <= C or not 1 <= K < D:
        raise ValueError(f"need 1 <= N={N} <= C={C} and 1 <= K={K} < D={D}")

    if groups is None:
        classes = _distinct_integers(rng, C, B, N)  # [B, N]
    else:
        classes = _distinct_within_groups(rng, groups, B, N)  # [B, N]
    drawings = rng.random((B, N, D)).argsort(axis=-1)[..., : K + 1]  # [B, N, K+1] distinct
    drawings = drawings.transpose(0, 2, 1)  # [B, K+1, N]

    # Column n of a support row is class n; column n of the query row is class order[n].
    order = rng.random((B, N)).argsort(axis=-1)  # [B, N], one permutation per task
    column_class = np.broadcast_to(np.arange(N), (B, K + 1, N)).copy()  # [B, K+1, N]
    column_class[:, K] = order
    rows = np.arange(K + 1)[None, :, None]  # [1, K+1, 1]
    tasks = np.arange(B)[:, None, None]  # [B, 1, 1]

    character = classes[tasks, column_class]  # [B, K+1, N]
    drawing = drawings[tasks, rows, column_class]  # [B, K+1, N]
    batch_images = images[character, drawing]  # [B, K+1, N, 784]
    if np.issubdtype(batch_images.dtype, np.floating):
        batch_images = batch_images.astype(np.float32, copy=False)
    batch_labels = np.eye(N, dtype=np.float32)[column_class]  # [B, K+1, N, N]
    return batch_images, batch_labels


def _distinct_integers(rng: np.random.Generator, high: int, rows: int, size: int) -> np.ndarray:
    """`[rows, size]` integers in [0, high), distinct within each row, uniform over such rows.

    Rejection sampling: redraw the rows that contain a repeat. With size << high almost no
    row is redrawn; when repeats are likely, fall back to one permutation per row.
    """
    if size * (size - 1) > high:  # P(repeat) > ~1/2: rejection would loop
        return np.stack([rng.permutation(high)[:size] for _ in range(rows)])
    out = rng.integers(0, high, size=(rows, size))
    while True:
        ordered = np.sort(out, axis=1)
        repeated = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if repeated.size == 0:
            return out
        out[repeated] = rng.integers(0, high, size=(repeated.size, size))


def _distinct_within_groups(
    rng: np.random.Generator, groups: list[np.ndarray], rows: int, size: int
) -> np.ndarray:
    """`[rows, size]` integers, each row distinct members of one group drawn uniformly from the
    groups that have at least `size` members."""
    usable = [np.asarray(group) for group in groups if len(group) >= size]
    if not usable:
        raise ValueError(f"no group has the N={size} characters a task needs")
    chosen = rng.integers(len(usable), size=rows)
    return np.stack([rng.choice(usable[g], size, replace=False) for g in chosen])


class TaskBatches:
    """An endless iterator of `sample_tasks` batches from one seeded stream.

    Yields `(images [B, K+1, N, 784], labels [B, K+1, N, N])` as float32 torch tensors.
    """

    def __init__(
        self,
        images: np.ndarray,
        num_classes: int,
        num_shots: int,
        batch_size: int,
        seed: int,
        groups: list[np.ndarray] | None = None,
    ) -> None:
        self.images = images
        self.groups = groups
        self.num_classes = num_classes
        self.num_shots = num_shots
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)

    def __iter__(self) -> Iterator[tuple]:
        import torch  # here only: the grader's process samples tasks without importing torch

        while True:
            batch = sample_tasks(
                self.images,
                self.num_classes,
                self.num_shots,
                self.batch_size,
                self.rng,
                self.groups,
            )
            yield tuple(torch.from_numpy(array) for array in batch)
