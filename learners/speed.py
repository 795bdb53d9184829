"""Measure training speed (steps per second) of one learner under precision/compile variants.

    python -m learners.speed --learner attention --task 5w1s --device cuda --out speed.json

Letters: B tasks per batch, K shots, N classes.

The benchmark's `--amp` and `--compile` switches should be used where they win; this tool
measures instead of guessing. Each variant trains a fresh learner: `--warmup-steps` first
(which absorbs torch.compile's compilation and cuDNN's autotuning), then steps for
`--seconds`, on the same batches.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from kit.episodes import TaskBatches
from kit.train import train_step
from learners import LEARNERS, build_learner
from learners.benchmark import auto_batch_size
from learners.common import Autocast
from learners.results import TASKS

VARIANTS = {"fp32": (False, False), "amp": (True, False), "amp+compile": (True, True)}


def steps_per_second(
    learner: str,
    task: str,
    device: torch.device,
    amp: bool,
    compile: bool,
    images,
    seconds: float,
    warmup_steps: int,
    batch_size: int,
) -> float:
    N, K = TASKS[task]
    torch.manual_seed(0)
    model = build_learner(learner, N, K).to(device)
    if compile:
        model.encoder = torch.compile(model.encoder)
    runnable = Autocast(model, device.type) if amp else model
    optimizer = torch.optim.Adam(runnable.parameters(), lr=1e-3)
    batches = iter(TaskBatches(images, N, K, batch_size, seed=0))

    def step() -> None:
        task_images, task_labels = (t.to(device) for t in next(batches))
        train_step(runnable, optimizer, task_images, task_labels)

    for _ in range(warmup_steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        steps += 1
    return steps / (time.perf_counter() - started)  # train_step's .item() synchronises


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m learners.speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--learner",
        choices=list(LEARNERS)[:3],
        default="attention",
        help="meta-learner (default: attention)",
    )
    parser.add_argument(
        "--task",
        choices=[t for t in TASKS if t != "lake"],
        default="5w1s",
        help="setting (default: 5w1s)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="(default: auto)"
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated (default: {','.join(VARIANTS)})",
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="timed seconds per variant (default: 10)"
    )
    parser.add_argument(
        "--warmup-steps", type=int, default=20, help="untimed steps first (default: 20)"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="tasks per step, 0: the benchmark's auto (default: 0)",
    )
    parser.add_argument(
        "--out", default=None, help="write the results as JSON here too (default: print only)"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "error: --device cuda was asked for, but PyTorch sees no CUDA GPU here", file=sys.stderr
        )
        return 1
    device = torch.device("cuda" if args.device != "cpu" and torch.cuda.is_available() else "cpu")
    from data import load_splits
    from learners.common import with_rotations

    images = with_rotations(load_splits("default", progress=False)["train"].images)
    batch_size = args.batch_size or auto_batch_size(args.task, device)
    results = {
        "learner": args.learner,
        "task": args.task,
        "device": str(device),
        "batch_size": batch_size,
    }
    if device.type == "cuda":
        results["machine"] = torch.cuda.get_device_name(device)
    for name in args.variants.split(","):
        amp, compile = VARIANTS[name]
        try:
            rate = steps_per_second(
                args.learner,
                args.task,
                device,
                amp,
                compile,
                images,
                args.seconds,
                args.warmup_steps,
                batch_size,
            )
        except Exception as error:  # noqa: BLE001 - a failing variant (e.g. no compiler) is a result
            results[name] = f"failed: {type(error).__name__}: {str(error)[:200]}"
        else:
            results[name] = round(rate, 2)
        print(f"{name}: {results[name]} steps/s", flush=True)
        if args.out:  # after every variant: a time limit that cuts the next keeps these
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
