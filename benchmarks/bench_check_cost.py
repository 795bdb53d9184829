"""What would one more accuracy check cost the grader? Time its trainings, as the grader runs them.

    python -m benchmarks.bench_check_cost                          # 1-shot 3-way, 70%, give up at 400
    python -m benchmarks.bench_check_cost -K 1 -N 2 --threshold 0.85 --steps 3000

Letters: K shots, N classes. For a candidate check (K, N, threshold, budget, give-up step) it
runs what `autograder/checks/hidden/test_accuracy.py` would: for the reference (`solutions/`)
and for the chance-level submission (`tests/submissions/accuracy_at_chance`), once with the
grader's tasks and once with the submission's `DataGenerator`, trainings in the sandboxed child
(`autograder.evaluation.train_and_evaluate`, one CPU thread), stopping at the threshold + the
grader's stop margin or giving up at chance, a fresh model only after a plateau, up to
`--attempts`. It prints and writes the wall time of each; the grader runs its trainings
`--jobs` at a time, so on 2 cores a check adds about half their sum to a grading.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from autograder.checks.hidden.thresholds import ATTEMPTS, EVAL_SEED, EVAL_TASKS, AccuracyCheck
from autograder.evaluation import Budget, save_train_images, train_until_learned
from autograder.runner import ChildSession
from benchmarks.report import machine_state, write_json

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = {
    "reference": ROOT / "solutions",
    "chance-level": ROOT / "tests" / "submissions" / "accuracy_at_chance",
}
SAMPLERS = ("grader", "student")


def time_check(check: AccuracyCheck, submission: Path, sampler: str, splits, train_file: Path,
               attempts: int, device: str = "cpu") -> dict:  # fmt: skip
    """One check's trainings for one submission and sampler, as the grader retries them."""
    started, load = time.perf_counter(), os.getloadavg()[0]
    with ChildSession(submission, device=device, threads=1) as child:
        outcomes = train_until_learned(
            child, check.budget, splits, train_file, sampler, 0, attempts, EVAL_TASKS,
            EVAL_SEED, stop_at=check.stop_at, give_up=check.give_up,
        )  # fmt: skip
    outcomes = [{"stopped": o.stopped, "steps": o.steps, "accuracy": o.accuracy} for o in outcomes]
    return {"sampler": sampler, "outcomes": outcomes,
            "wall_s": round(time.perf_counter() - started, 1), "load_before": round(load, 2)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_check_cost",
        description="Wall time of a candidate accuracy check's trainings, for the reference and "
        "a chance-level submission, as the grader runs them.",
    )
    add = parser.add_argument
    add("-K", "--num-shots", type=int, default=1, help="shots per class (default: 1)")
    add("-N", "--num-classes", type=int, default=3, help="classes per task (default: 3)")
    add("--threshold", type=float, default=0.70, help="meta-test accuracy (default: 0.70)")
    add("--steps", type=int, default=4000, help="most steps trained (default: 4000)")
    add("--give-up", type=int, default=400, help="steps before giving up at chance (default: 400)")
    add("--attempts", type=int, default=ATTEMPTS,
        help=f"fresh models after a plateau (default: {ATTEMPTS}, the grader's)")  # fmt: skip
    add("--device", choices=("cpu", "cuda"), default="cpu",
        help="where the child trains (default: cpu)")  # fmt: skip
    add("--out", type=Path, default=Path("runs/bench_check_cost.json"),
        help="JSON results (default: runs/bench_check_cost.json)")  # fmt: skip
    args = parser.parse_args(argv)
    budget = Budget(num_shots=args.num_shots, num_classes=args.num_classes, steps=args.steps)
    check = AccuracyCheck(budget, args.threshold, give_up=args.give_up)

    import torch

    from data import OmniglotDataError, load_splits

    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no CUDA GPU here: use --device cpu",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        splits = load_splits("default", progress=False, raw=True)
    except OmniglotDataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        train_file = save_train_images(splits["train"].images, Path(folder))
        for name, submission in SUBMISSIONS.items():
            for sampler in SAMPLERS:
                timed = time_check(check, submission, sampler, splits, train_file,
                                   args.attempts, args.device)  # fmt: skip
                row = {"submission": name, **timed}
                print(json.dumps(row), flush=True)
                rows.append(row)
    payload = {"benchmark": "check_cost", "machine": machine_state(torch.device(args.device)),
               "check": {**vars(args), "out": str(args.out)}, "stop_at": check.stop_at,
               "rows": rows}  # fmt: skip
    write_json(args.out, payload)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
