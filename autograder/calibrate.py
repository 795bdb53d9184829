"""Calibrate the accuracy checks: measure a submission (the reference) over several seeds.

    python -m autograder.calibrate                      # reference, seeds 0-4, the checks' budgets
    python -m autograder.calibrate --steps 1000 2000 --learning-rates 1e-3 3e-3 --workers 8

Runs exactly what an accuracy check runs (`autograder.evaluation.train_and_evaluate`: training
in a child process in segments, a stop check between segments and meta-test at the end in this
one, stopping where the check stops) for every combination of seed, (K, N), sampler, step
count and learning rate, plus an untrained model (0 steps) per (K, N) as the chance baseline,
and prints one line per run and the minimum per setting. `--no-stop` trains every step of the
budget (the stop-check curve is still recorded). Thresholds go in
`autograder/checks/hidden/thresholds.py`, with the false-failure computation.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

from autograder.checks.hidden.thresholds import CHECKS, EVAL_SEED, EVAL_TASKS
from autograder.evaluation import save_train_images, train_and_evaluate
from autograder.runner import ChildError, ChildSession


def run_one(
    submission: Path, device: str, splits, train_file, check, budget, sampler, seed, stop: bool
) -> dict:
    started = time.perf_counter()
    load = os.getloadavg()[0]
    with ChildSession(submission, device=device, threads=1) as child:
        try:
            outcome = train_and_evaluate(
                child,
                budget,
                splits,
                train_file,
                sampler,
                seed,
                EVAL_TASKS,
                EVAL_SEED,
                stop_at=check.stop_at if stop else None,
                give_up=check.give_up if stop else None,
            )
            result = {
                "accuracy": outcome.accuracy if outcome.accuracy is not None else float("nan"),
                "steps_trained": outcome.steps,
                "stopped": outcome.stopped,
                "val": [[step, round(acc, 4)] for step, acc in outcome.val],
            }
        except ChildError as error:
            result = {"accuracy": float("nan"), "stopped": "error"}
            print(f"error: {error}", file=sys.stderr)
    return {
        **asdict(budget),
        "sampler": sampler,
        "seed": seed,
        **result,
        "seconds": round(time.perf_counter() - started, 1),
        "load": round(load, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.calibrate",
        description="Measure the accuracy checks' runs over several seeds, to set thresholds.",
    )
    parser.add_argument(
        "--submission", default="solutions", help="folder to measure (default: solutions)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="(default: 0 1 2 3 4)"
    )
    parser.add_argument(
        "--steps", type=int, nargs="+", help="step counts (default: the checks' budgets)"
    )
    parser.add_argument(
        "--learning-rates", type=float, nargs="+", help="(default: the checks' budgets)"
    )
    parser.add_argument(
        "--grid",
        nargs="+",
        metavar="STEPS:LR:BATCH",
        help="explicit budgets instead of --steps x --learning-rates (default: none)",
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        metavar="KxN",
        help="only these (K, N) of the checks, e.g. 1x2 (default: all)",
    )
    parser.add_argument(
        "--samplers", nargs="+", default=["grader", "student"], help="(default: grader student)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time (default: 2)")
    parser.add_argument("--out", help="also write the runs as JSON here (default: none)")
    parser.add_argument(
        "--no-stop",
        action="store_true",
        help="train every step, without the checks' early stop and give-up (default: off)",
    )
    args = parser.parse_args(argv)

    from data import load_splits

    splits = load_splits("default", progress=False)
    submission = Path(args.submission).resolve()
    budgets: list[tuple] = []  # (check, budget)
    for check in CHECKS:
        shape = f"{check.budget.num_shots}x{check.budget.num_classes}"
        if args.shapes and shape not in args.shapes:
            continue
        if args.grid:
            for item in args.grid:
                steps, lr, batch = item.split(":")
                budgets.append(
                    (
                        check,
                        replace(
                            check.budget,
                            steps=int(steps),
                            learning_rate=float(lr),
                            batch_size=int(batch),
                        ),
                    )
                )
        else:
            steps = args.steps or [check.budget.steps]
            rates = args.learning_rates or [check.budget.learning_rate]
            for s, lr in itertools.product(steps, rates):
                budgets.append((check, replace(check.budget, steps=s, learning_rate=lr)))
        budgets.append((check, replace(check.budget, steps=0)))  # untrained: chance baseline
    jobs = []
    for check, budget in budgets:
        seeds = args.seeds if budget.steps else args.seeds[:1]
        samplers = args.samplers if budget.steps else args.samplers[:1]
        jobs += [(check, budget, sampler, seed) for sampler in samplers for seed in seeds]
    with tempfile.TemporaryDirectory() as folder:
        train_file = save_train_images(splits["train"].images, Path(folder))
        with ThreadPoolExecutor(args.workers) as pool:
            futures = [
                pool.submit(
                    run_one, submission, args.device, splits, train_file, *job, not args.no_stop
                )
                for job in jobs
            ]
            runs = []
            for future in futures:
                run = future.result()
                runs.append(run)
                print(
                    f"K={run['num_shots']} N={run['num_classes']} {run['sampler']:<7} "
                    f"steps={run['steps']:<5} lr={run['learning_rate']:<6g} "
                    f"batch={run['batch_size']:<4} seed={run['seed']} "
                    f"accuracy={100 * run['accuracy']:.1f}% {run['stopped']} after "
                    f"{run.get('steps_trained')} steps ({run['seconds']:.0f} s, load "
                    f"{run['load']})",
                    flush=True,
                )
    print("\nworst seed per setting:")
    key = ("num_shots", "num_classes", "sampler", "steps", "learning_rate", "batch_size")
    for setting, group in itertools.groupby(
        sorted(runs, key=lambda r: [r[k] for k in key]), key=lambda r: [r[k] for k in key]
    ):
        accuracies = [r["accuracy"] for r in group]
        print(
            f"K={setting[0]} N={setting[1]} {setting[2]:<7} steps={setting[3]:<5} "
            f"lr={setting[4]:<6g} batch={setting[5]:<4} min {100 * min(accuracies):.1f}% max "
            f"{100 * max(accuracies):.1f}% over {len(accuracies)} seed(s)"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
