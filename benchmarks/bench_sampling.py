"""How fast can tasks be sampled? Episodes per second of four ways to feed training.

    python -m benchmarks.bench_sampling                   # 5-way and 2-way 1-shot, batch 128
    python -m benchmarks.bench_sampling --seconds 0.2     # a quick look

Letters: B tasks per batch, K shots, N classes. On the real meta-train split, it times:

- `_sample` per episode: the reference `DataGenerator._sample()` called in a Python loop;
- DataLoader, 0 / 2 workers: `kit.loader.task_loader` over that generator, batches
  `[B, K+1, N, 784]` moved to the device (2 workers: after the workers have started);
- `sample_tasks`: the kit's vectorised sampler, one call per batch, moved to the device.

Each measurement runs for at least `--seconds` after one warm-up call; the result is episodes
(tasks) per second. Timings depend on what else the machine is doing: the JSON records the
load average at the start.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.report import machine_state, print_table, write_json
from data import OmniglotDataError, load_splits
from kit.episodes import sample_tasks
from kit.loader import task_loader
from kit.submission import load_submission
from kit.train import resolve_device


def episodes_per_second(draw: Callable[[], int], seconds: float, device: torch.device) -> float:
    """Call `draw()` (which returns how many episodes it produced) for >= `seconds`."""
    draw()  # warm-up: first-call allocations, worker start-up
    episodes, started = 0, time.perf_counter()
    while True:
        episodes += draw()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return episodes / elapsed


def loader_episodes_per_second(
    generator: torch.utils.data.IterableDataset,
    batch_size: int,
    num_workers: int,
    seconds: float,
    device: torch.device,
) -> float:
    """Episodes per second of `task_loader(generator)`; its workers stop when it is dropped."""
    loader = iter(task_loader(generator, batch_size, seed=0, num_workers=num_workers))

    def one_batch() -> int:
        batch_images, batch_labels = next(loader)
        batch_images.to(device), batch_labels.to(device)
        return batch_size

    return episodes_per_second(one_batch, seconds, device)


def measure_task(
    images: np.ndarray,
    num_classes: int,
    num_shots: int,
    batch_size: int,
    seconds: float,
    device: torch.device,
) -> list[dict]:
    """One row per sampling method for N-way K-shot tasks from `images [C, 20, 784]`."""
    DataGenerator = load_submission("solutions").load_data.DataGenerator
    task = f"{num_classes}-way {num_shots}-shot"
    rows = []

    generator = DataGenerator(images, num_classes, num_shots, seed=0)

    def one_episode() -> int:
        generator._sample()
        return 1

    rows.append({"task": task, "method": "_sample per episode", "workers": 0,
                 "episodes_per_s": episodes_per_second(one_episode, seconds, device)})  # fmt: skip

    for workers in (0, 2):
        rate = loader_episodes_per_second(generator, batch_size, workers, seconds, device)
        rows.append({"task": task, "method": "DataLoader over _sample", "workers": workers,
                     "episodes_per_s": rate})  # fmt: skip

    rng = np.random.default_rng(0)

    def one_vectorised_batch() -> int:
        for array in sample_tasks(images, num_classes, num_shots, batch_size, rng):
            torch.from_numpy(array).to(device)
        return batch_size

    rows.append({"task": task, "method": "sample_tasks (batched)", "workers": 0,
                 "episodes_per_s": episodes_per_second(one_vectorised_batch, seconds, device)})  # fmt: skip
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_sampling",
        description="Episodes per second of the reference _sample, DataLoaders over it, and "
        "the batched sample_tasks, on the real meta-train split.",
    )
    parser.add_argument("--ways", type=int, nargs="+", default=[5, 2],
                        help="N of each task shape (default: 5 2)")  # fmt: skip
    parser.add_argument("--shots", type=int, default=1, help="K (default: 1)")
    parser.add_argument("--batch-size", type=int, default=128,
                        help="tasks per batch, B (default: 128)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="minimum duration of each measurement (default: 3.0)")  # fmt: skip
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where batches are moved; auto takes CUDA when present "
                        "(default: auto)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/bench_sampling.json"),
                        help="JSON results (default: runs/bench_sampling.json)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        device = resolve_device(args.device)
        images = load_splits("default", progress=False)["train"].images  # [1100, 20, 784]
    except (ValueError, OmniglotDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    payload = {"benchmark": "sampling", "machine": machine_state(device),
               "batch_size": args.batch_size, "seconds_per_measurement": args.seconds}  # fmt: skip
    rows = []
    for num_classes in args.ways:
        rows += measure_task(images, num_classes, args.shots, args.batch_size, args.seconds, device)
    payload["results"] = rows
    print_table(rows, ["task", "method", "workers", "episodes_per_s"])
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
