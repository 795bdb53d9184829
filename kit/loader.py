"""DataLoader plumbing for any `DataGenerator`: batches of tasks, one random stream per worker.

Letters: B tasks per batch, K shots, N classes, 784 = 28 x 28 pixels.

`task_loader` wraps any `DataGenerator` (the reference's or a student's) in a DataLoader and
gives every worker its own random stream derived from the run's seed, so that workers never
repeat each other's tasks and a run is reproducible. This module ships in the student package;
the kit's batched sampler (`kit.episodes`) does not.
"""

from __future__ import annotations

import numpy as np
import torch


def reseed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: give each worker's copy of the generator its own stream.

    A DataLoader copies the dataset into every worker, `self.rng` included, so without this
    every worker would yield the same tasks. The stream is derived from the DataLoader's base
    seed (itself drawn from the `generator` passed to it), so a seeded run is reproducible.
    """
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng([info.seed % 2**63, worker_id])


def task_loader(
    generator: torch.utils.data.IterableDataset,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
) -> torch.utils.data.DataLoader:
    """Batches of a `DataGenerator`: `[B, K+1, N, 784]` images and `[B, K+1, N, N]` labels.

    With `num_workers > 0` every worker draws different tasks, reproducibly from `seed`.
    """
    return torch.utils.data.DataLoader(
        generator,
        batch_size=batch_size,
        num_workers=num_workers,
        worker_init_fn=reseed_worker if num_workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
        persistent_workers=num_workers > 0,
    )
