"""How fast does the reference MANN train, and how long until it is good?

    python -m benchmarks.bench_training                    # TrainConfig defaults (K=1, N=2)
    python -m benchmarks.bench_training --device cuda
    python -m benchmarks.bench_training --steps 3 --max-steps 4 --eval-every 2 --eval-tasks 20

Letters: B tasks per batch, K shots, N classes. With `kit.train.TrainConfig`'s defaults it
measures:

1. training steps per second (`kit.train.train_step` on batches `[B, K+1, N, 784]`), and the
   fraction of each step spent getting the batch onto the device, with the kit's batched
   sampler (`sample_tasks`) and with the per-episode DataLoader over `DataGenerator._sample`
   (no workers);
2. time to target, once per seed of `--seeds`: train as `python -m kit.train --seed S` does
   (with `--sampler`: the reference `DataGenerator` by default, or the kit's batched sampler),
   evaluate on `--eval-tasks` meta-test tasks (the same seeded tasks each time) every
   `--eval-every` steps, and report the training seconds (evaluations excluded) at which
   meta-test accuracy first reaches `--target`, per seed and the median over the seeds.

Timings depend on what else the machine is doing: the JSON records the load average.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.plateau_study import parse_seeds
from benchmarks.report import machine_state, print_table, write_json
from data import OmniglotDataError, load_splits
from kit.submission import load_submission
from kit.train import (
    SAMPLERS,
    TrainConfig,
    resolve_device,
    train,
    train_step,
    training_batches,
)

WARMUP_STEPS = 5  # first steps allocate and warm caches: not timed


class TargetReached(Exception):
    """Raised from `train`'s `on_eval` callback to stop a run once the target is reached."""


def time_steps(config: TrainConfig, images: np.ndarray, steps: int) -> dict:
    """Steps per second and the share of each step spent sampling, for `config.sampler`."""
    device = resolve_device(config.device)
    submission = load_submission(config.code)
    torch.manual_seed(config.seed)
    model = submission.models.MANN(config.num_classes, config.num_shots, config.hidden_dim)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    batches = iter(training_batches(config, submission, images))
    sampling = total = 0.0
    for step in range(WARMUP_STEPS + steps):
        started = time.perf_counter()
        batch_images, batch_labels = (tensor.to(device) for tensor in next(batches))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        sampled = time.perf_counter()
        train_step(model, optimizer, batch_images, batch_labels)  # .item() waits for the GPU
        if step >= WARMUP_STEPS:
            sampling += sampled - started
            total += time.perf_counter() - started
    return {
        "sampler": config.sampler,
        "steps_per_s": steps / total,
        "ms_per_step": 1000 * total / steps,
        "sampling_fraction": sampling / total,
    }


def time_to_target(
    config: TrainConfig,
    splits: dict,
    target: float,
    max_steps: int,
    eval_every: int,
    eval_tasks: int,
    progress: bool,
) -> dict:
    """Train until meta-test accuracy >= `target` (or `max_steps`); the evaluation history."""
    history: list[dict] = []

    def on_eval(row: dict) -> None:
        history.append(row)
        if row["val_accuracy"] >= target:
            raise TargetReached

    run = replace(config, steps=max_steps, eval_every=eval_every, val_tasks=eval_tasks,
                  test_tasks=eval_tasks)  # fmt: skip
    # `train` evaluates on "val" every eval_every steps: hand it meta-test in that role.
    test_as_val = {"train": splits["train"], "val": splits["test"], "test": splits["test"]}
    try:
        train(run, splits=test_as_val, progress=progress, on_eval=on_eval)
    except TargetReached:
        pass
    reached = next((row for row in history if row["val_accuracy"] >= target), None)
    return {
        "target": target,
        "reached": reached is not None,
        "step": reached["step"] if reached else None,
        "train_seconds": reached["train_seconds"] if reached else None,
        "test_accuracy": reached["val_accuracy"] if reached else history[-1]["val_accuracy"],
        "test_ci95": reached["val_ci95"] if reached else history[-1]["val_ci95"],
        "curve": [
            {key: row[key] for key in ("step", "train_seconds", "val_accuracy", "val_ci95")}
            for row in history
        ],
    }


def _median_with_misses(seconds: list[float], runs: int) -> float | None:
    """The median of `runs` times of which only `seconds` are known, the others infinite;
    None when the median itself is a miss."""
    ordered = sorted(seconds) + [float("inf")] * (runs - len(seconds))
    median = float(np.median(ordered)) if ordered else float("inf")
    return median if np.isfinite(median) else None


def _format_seconds(seconds: float | None) -> str:
    return "not reached" if seconds is None else f"{seconds:.1f} s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_training",
        description="Training speed of the reference MANN at the kit's defaults, the share of "
        "a step spent sampling, and the training time to a target meta-test accuracy.",
    )
    add = parser.add_argument
    add("--steps", type=int, default=100, help="timed training steps per sampler (default: 100)")
    add("--target", type=float, default=0.9, help="meta-test accuracy to reach (default: 0.9)")
    add("--max-steps", type=int, default=5000,
        help="give up on the target after this many steps (default: 5000)")  # fmt: skip
    add("--eval-every", type=int, default=100,
        help="steps between meta-test evaluations (default: 100)")  # fmt: skip
    add("--eval-tasks", type=int, default=1000,
        help="meta-test tasks per evaluation (default: 1000)")  # fmt: skip
    add("--seeds", type=parse_seeds, default="0-4",
        help="training seeds timed to the target, e.g. 0-4 or 0,3 (default: 0-4)")  # fmt: skip
    add("--sampler", choices=SAMPLERS, default=TrainConfig().sampler,
        help="what feeds the timed-to-target trainings: the reference DataGenerator or the "
             f"kit's batched sampler (default: {TrainConfig().sampler})")  # fmt: skip
    add("--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="where to train; auto takes CUDA when present (default: auto)")  # fmt: skip
    add("--out", type=Path, default=Path("runs/bench_training.json"),
        help="JSON results (default: runs/bench_training.json)")  # fmt: skip
    add("--no-progress", action="store_true", help="no progress bar (default: off)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config = replace(
        TrainConfig(), device=args.device, code="solutions", num_workers=0, sampler=args.sampler
    )
    try:
        device = resolve_device(config.device)
        splits = load_splits(config.split, progress=False)
    except (ValueError, OmniglotDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    payload = {"benchmark": "training", "machine": machine_state(device), "config": asdict(config)}

    speed = [
        time_steps(replace(config, sampler=sampler), splits["train"].images, args.steps)
        for sampler in ("batched", "generator")
    ]
    payload["speed"] = speed
    print_table(speed, ["sampler", "steps_per_s", "ms_per_step", "sampling_fraction"])

    K, N = config.num_shots, config.num_classes
    runs = []
    for seed in args.seeds:
        result = time_to_target(replace(config, seed=seed), splits, args.target, args.max_steps,
                                args.eval_every, args.eval_tasks,
                                progress=not args.no_progress)  # fmt: skip
        runs.append({"seed": seed, **result})
        if result["reached"]:
            print(f"K={K} N={N} seed {seed}: meta-test accuracy "
                  f"{100 * result['test_accuracy']:.1f}% >= {100 * args.target:.0f}% after "
                  f"{result['step']} steps, {result['train_seconds']:.1f} s of training")  # fmt: skip
        else:
            print(f"K={K} N={N} seed {seed}: {100 * args.target:.0f}% not reached in "
                  f"{args.max_steps} steps (last: {100 * result['test_accuracy']:.1f}%)")  # fmt: skip
    seconds = [run["train_seconds"] for run in runs if run["reached"]]
    payload["time_to_target"] = {
        "target": args.target,
        "seeds": [run["seed"] for run in runs],
        "reached": len(seconds),
        # A seed that never reached the target counts as slower than every seed that did.
        "median_train_seconds": _median_with_misses(seconds, len(runs)),
        "runs": runs,
    }
    print(f"median over {len(runs)} seeds: "
          f"{_format_seconds(payload['time_to_target']['median_train_seconds'])} of training "
          f"to {100 * args.target:.0f}% ({len(seconds)} of {len(runs)} reached it)")  # fmt: skip
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
