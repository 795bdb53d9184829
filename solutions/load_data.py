"""Few-shot episode sampling for black-box meta-learning on Omniglot.

A *task* (episode) is an N-way, K-shot classification problem drawn from p(T):

- N: classes per task ("N-way"), K: labelled examples per class ("K-shot");
- C: characters in the split the generator draws from, D: drawings per character (20);
- the support set D_tr is K labelled drawings of each of the N classes;
- the query set D_ts is one further drawing of each class, which the learner must label.

`DataGenerator._sample` returns one task as two arrays:

    images  [K+1, N, 784]  float32, rows 0..K-1 the support set, row K the query set
    labels  [K+1, N, N]    float32 one-hot

Support rows keep a fixed class order (column n is class n, label e_n); the query row is
shuffled, images and labels by the same permutation, so that the position of a query image
carries no information about its label. A `torch.utils.data.DataLoader(generator,
batch_size=B)` stacks tasks into `[B, K+1, N, 784]` and `[B, K+1, N, N]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch


class DataGenerator(torch.utils.data.IterableDataset):
    """An endless stream of N-way, K-shot tasks drawn from one split's characters.

    Args:
        images: float32 array `[C, D, 784]`, the C characters of one split with D drawings
            each (D = 20 for Omniglot), ink 1.0 and paper 0.0.
        num_classes: N, the classes per task (2 <= N <= C).
        num_shots: K, the labelled support examples per class (K + 1 <= D).
        seed: seed of `self.rng`, the only source of randomness; `None` draws fresh entropy.
    """

    def __init__(
        self,
        images: np.ndarray,
        num_classes: int,
        num_shots: int,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if images.ndim != 3:
            raise ValueError(f"images must be [C, D, 784], got shape {images.shape}")
        num_characters, num_drawings, _ = images.shape
        if not 1 <= num_classes <= num_characters:
            raise ValueError(f"num_classes={num_classes} must be in 1..{num_characters} (C)")
        if not 1 <= num_shots < num_drawings:
            raise ValueError(f"num_shots={num_shots} must be in 1..{num_drawings - 1} (D - 1)")
        self.images = images
        self.num_classes = num_classes
        self.num_shots = num_shots
        self.rng = np.random.default_rng(seed)

    def _sample(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw one task.

        Returns:
            images: float32 `[K+1, N, 784]`; `images[k, n]` is a drawing of class n for
                k < K (support), and `images[K]` holds one further drawing per class in a
                shuffled order (query).
            labels: float32 `[K+1, N, N]`, one-hot; `labels[k, n] = e_n` for k < K, and
                `labels[K]` is permuted together with `images[K]`.

        Outline:
            - The N classes are N distinct characters of the C, drawn uniformly without
              replacement; class n is column n.
            - Each class uses K+1 distinct drawings of its character: K support drawings
              (rows 0..K-1) and one query drawing (row K), never one of its support drawings.
            - Support rows are in class order: row k, column n holds a drawing of class n,
              labelled e_n.
            - The query row is shuffled by a fresh random permutation for every task, the
              same permutation for its images and its labels, so that a query's position
              says nothing about its label.
            - Every random number comes from `self.rng`: the same seed gives the same tasks.

        Steps:
            1. Pick N distinct characters: `self.rng.choice(C, size=N, replace=False)`.
            2. For each of them pick K+1 distinct drawings (again without replacement):
               the first K are its support examples, the last one its query example.
            3. Gather `images [K+1, N, 784]` so that `images[k, n]` is drawing k of class n,
               and build `labels [K+1, N, N]` with `labels[k, n] = e_n` (one-hot).
            4. Shuffle the query row: draw ONE permutation `order = self.rng.permutation(N)`
               and apply it to both `images[K]` and `labels[K]`.
            5. Return both arrays as float32. Take every random number from `self.rng`.
        """
        ### BEGIN SOLUTION
        K, N = self.num_shots, self.num_classes
        num_characters, num_drawings, _ = self.images.shape

        # N distinct characters, then K+1 distinct drawings of each: K support, 1 query.
        classes = self.rng.choice(num_characters, size=N, replace=False)  # [N]
        drawings = np.stack(
            [self.rng.choice(num_drawings, size=K + 1, replace=False) for _ in range(N)],
            axis=1,
        )  # [K+1, N]
        images = self.images[classes[None, :], drawings]  # [K+1, N, 784]
        labels = np.broadcast_to(np.eye(N, dtype=np.float32), (K + 1, N, N)).copy()  # [K+1, N, N]

        # Shuffle the query row's columns, images and labels by one permutation.
        order = self.rng.permutation(N)  # [N]
        images[K] = images[K, order]
        labels[K] = labels[K, order]
        return images.astype(np.float32, copy=False), labels
        ### END SOLUTION

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield `self._sample()` forever."""
        while True:
            yield self._sample()
