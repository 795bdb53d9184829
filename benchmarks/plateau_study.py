"""The plateau study: when does the reference MANN leave chance, per training recipe and seed?

    python -m benchmarks.plateau_study                    # the whole study (hours on 2 cores)
    python -m benchmarks.plateau_study --only K1N2:combined K1N2:pytorch --seeds 0-15
    python -m benchmarks.plateau_study --plot             # figure + summary from the JSON only

Letters: K shots, N classes.

Every run is `kit.train.train` on the reference (`solutions/`) with the kit's batched sampler,
one CPU thread per run, meta-val accuracy on `VAL_TASKS` tasks every `EVAL_EVERY` steps and
meta-test accuracy on 1000 tasks at the end. Per run it records the escape step (the first
evaluation at which meta-val accuracy is at least 1/N + 10 points), the first step at which
meta-val reaches the homework's target, and the final meta-test accuracy. Runs are appended
to `results/plateau/runs.jsonl` as they finish, so an interrupted study keeps what it measured
and a rerun skips the runs already there; `--plot` draws the ECDF of the escape step
(`results/plateau/escape_ecdf.png`) and writes the per-recipe summary
(`results/plateau/summary.json`). Step counts and accuracies do not depend on the machine's
load; the seconds do, so the load average is recorded with every run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from kit.step import Recipe
from kit.train import default_steps

OUT = Path(__file__).resolve().parent.parent / "results" / "plateau"
EVAL_EVERY = 100
VAL_TASKS = 500
TEST_TASKS = 1000
ESCAPE_MARGIN = 0.10  # meta-val accuracy at least 1/N + this has left chance
TARGETS = {(1, 2): 0.90, (2, 2): 0.90, (1, 3): 0.80, (1, 4): 0.60}  # the homework's
SETTINGS = {"K1N2": (1, 2), "K2N2": (2, 2), "K1N3": (1, 3), "K1N4": (1, 4)}
# Meta-val levels whose first step the summary reports: the grader's give-up line (chance + 5
# points on 2-way tasks) and its stop line (threshold 85% + 3 points).
GRADER_LEVELS = (0.55, 0.88)

# One remedy at a time, then all together. "pytorch" is the trainer before the study. A name
# ending in "/no-readout" trains the homework's model before its linear read-out was added
# (benchmarks/variants/no_readout/); every other name trains the reference, solutions/.
RECIPES: dict[str, Recipe] = {
    "pytorch": Recipe.pytorch_default(1e-3),
    "init": replace(Recipe.pytorch_default(1e-3), init="orthogonal", forget_bias=1.0),
    "lr-schedule-clip": replace(Recipe(), init="default", forget_bias=0.0),
    "combined": Recipe(),
    "pytorch/no-readout": Recipe.pytorch_default(1e-3),
    "combined/no-readout": Recipe(),
}
VARIANTS = Path(__file__).resolve().parent / "variants"


def code_of(recipe_name: str) -> str:
    """The `--code` folder a recipe name trains: the no-read-out variant or the reference."""
    if recipe_name.endswith("/no-readout"):
        return str(VARIANTS / "no_readout")
    return "solutions"


def parse_seeds(text: str) -> list[int]:
    """`0-15` or `0,4,6` or `3`."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += list(range(int(low), int(high or low) + 1))
    return seeds


def first_step(history: list[dict], level: float) -> int | None:
    """The first evaluated step whose meta-val accuracy is at least `level`; None if none."""
    return next((row["step"] for row in history if row["val_accuracy"] >= level), None)


_SPLITS: dict = {}  # the data splits, loaded once before the worker processes fork


def run_one(setting: str, recipe_name: str, seed: int, steps: int) -> dict:
    import torch

    from kit.train import TrainConfig, train

    torch.set_num_threads(1)
    K, N = SETTINGS[setting]
    recipe = RECIPES[recipe_name]
    config = TrainConfig(
        num_shots=K,
        num_classes=N,
        learning_rate=recipe.learning_rate,
        init=recipe.init,
        forget_bias=recipe.forget_bias,
        warmup_steps=recipe.warmup_steps,
        schedule=recipe.schedule,
        clip_norm=recipe.clip_norm or 0.0,
        steps=steps,
        eval_every=EVAL_EVERY,
        val_tasks=VAL_TASKS,
        test_tasks=TEST_TASKS,
        seed=seed,
        device="cpu",
        sampler="batched",
        code=code_of(recipe_name),
    )
    load = os.getloadavg()[0]
    result = train(config, splits=_SPLITS, progress=False)
    return {
        "setting": setting,
        "recipe": recipe_name,
        "seed": seed,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "recipe_fields": asdict(recipe),
        "code": Path(config.code).name,
        "escape_step": first_step(result.history, 1 / N + ESCAPE_MARGIN),
        "target": TARGETS[(K, N)],
        "target_step": first_step(result.history, TARGETS[(K, N)]),
        "test_accuracy": result.test.accuracy,
        "test_ci95": result.test.ci95,
        "final_val_accuracy": result.history[-1]["val_accuracy"],
        "train_seconds": round(result.train_seconds, 1),
        "seconds_to_target": next(
            (r["train_seconds"] for r in result.history if r["val_accuracy"] >= TARGETS[(K, N)]),
            None,
        ),
        "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "curve": [[r["step"], round(r["val_accuracy"], 4)] for r in result.history],
    }


def load_runs(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def summarise(runs: list[dict]) -> dict:
    """Per setting and recipe: seeds, escapes, targets reached, test accuracy quantiles."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(f"{run['setting']}:{run['recipe']}:{run['steps']}", []).append(run)
    summary = {}
    for key, group in sorted(groups.items(), key=_by_setting_recipe_steps):
        tests = np.array([r["test_accuracy"] for r in group])
        escapes = [r["escape_step"] for r in group]
        reached = [r["test_accuracy"] >= r["target"] for r in group]
        times = [r["seconds_to_target"] for r in group if r["seconds_to_target"] is not None]
        summary[key] = {
            "seeds": sorted(r["seed"] for r in group),
            "steps": group[0]["steps"],
            "batch_size": group[0]["batch_size"],
            "target": group[0]["target"],
            "escaped": sum(e is not None for e in escapes),
            "escape_step_median": _median([e for e in escapes if e is not None]),
            "escape_step_max": max((e for e in escapes if e is not None), default=None),
            "test_reaches_target": int(sum(reached)),
            "test_accuracy_min": round(float(tests.min()), 4),
            "test_accuracy_median": round(float(np.median(tests)), 4),
            "test_accuracy_max": round(float(tests.max()), 4),
            "test_accuracy_mean": round(float(tests.mean()), 4),
            "test_accuracy_std": round(float(tests.std(ddof=1)), 4) if len(tests) > 1 else None,
            "val_target_step_median": _median(
                [r["target_step"] for r in group if r["target_step"] is not None]
            ),
            "seconds_to_target_median_loaded": _median(times),
            "train_seconds_median_loaded": _median([r["train_seconds"] for r in group]),
            "load_median": _median([r["load_before"] for r in group]),
            # Test minus meta-val at the end of each run (500 val, 1000 test tasks): the gap
            # between the two splits, for the grader's stop rule.
            "test_minus_val_mean": round(float(np.mean(gaps := [
                r["test_accuracy"] - r["final_val_accuracy"] for r in group])), 4),
            "test_minus_val_std": round(float(np.std(gaps, ddof=1)), 4) if len(gaps) > 1 else None,
        }  # fmt: skip
        for level in GRADER_LEVELS:
            steps = [first_step(_history(r), level) for r in group]
            summary[key][f"first_step_val_{level}"] = steps
            summary[key][f"first_step_val_{level}_fit"] = normal_fit(steps)
    return summary


def _by_setting_recipe_steps(item: tuple[str, list]) -> tuple[str, str, int]:
    setting, recipe, steps = item[0].split(":")
    return setting, recipe, int(steps)


def _history(run: dict) -> list[dict]:
    return [{"step": step, "val_accuracy": acc} for step, acc in run["curve"]]


def normal_fit(steps: list[int | None]) -> dict | None:
    """Mean and standard deviation of the steps (None if any run never got there), and the
    step beyond which a normal fit puts at most 1 run in 1,000 (mean + 3.09 sd)."""
    if not steps or any(s is None for s in steps) or len(steps) < 2:
        return None
    mean, std = float(np.mean(steps)), float(np.std(steps, ddof=1))
    return {"mean": round(mean, 1), "std": round(std, 1), "p999": round(mean + 3.09 * std, 1)}


def _median(values: list) -> float | None:
    return float(np.median(values)) if values else None


def plot(runs: list[dict], path: Path) -> None:
    """ECDF of the escape step per recipe, one panel per setting; never-escaped runs at +inf."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = [s for s in SETTINGS if any(r["setting"] == s for r in runs)]
    fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        keys = sorted({(r["recipe"], r["steps"]) for r in runs if r["setting"] == setting})
        for recipe, steps in keys:
            group = [
                r
                for r in runs
                if (r["setting"], r["recipe"], r["steps"]) == (setting, recipe, steps)
            ]
            escapes = sorted(r["escape_step"] or np.inf for r in group)
            xs = [0] + [e for e in escapes if np.isfinite(e)] + [steps]
            ys = [0] + [(i + 1) / len(group) for i, e in enumerate(escapes) if np.isfinite(e)]
            ys.append(ys[-1])
            label = f"{recipe}, {steps} steps ({len(group)} seeds)"
            ax.step(xs, ys, where="post", label=label)
        K, N = SETTINGS[setting]
        ax.set(
            title=f"{N}-way {K}-shot: meta-val >= chance + 10 points",
            xlabel="training step (batches of 128 tasks; budgets in the legend)",
            ylabel="fraction of seeds escaped",
            ylim=(0, 1.02),
            xlim=(0, escape_axis_end([r for r in runs if r["setting"] == setting])),
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def escape_axis_end(runs: list[dict]) -> float:
    """Where a panel's step axis ends: a quarter past the latest escape (at least step 1,000),
    or at the longest budget if that comes first, so that early escapes stay readable."""
    escapes = [r["escape_step"] for r in runs if r["escape_step"] is not None]
    return min(max(r["steps"] for r in runs), max(1.25 * max(escapes, default=0), 1000))


def markdown_table(summary: dict) -> str:
    """The README's results table: one row per setting, recipe and step budget."""
    lines = [
        (
            "| (K, N) | recipe | steps | seeds | target | seeds >= target (meta-test) | "
            "meta-test min / median / max | escape step median (max) | meta-val first >= "
            "target, median |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: |",
    ]
    for key, row in summary.items():
        setting, recipe, steps = key.split(":")
        K, N = SETTINGS[setting]
        n = len(row["seeds"])
        never = n - row["escaped"]
        escape = "never" if not row["escaped"] else (
            f"{row['escape_step_median']:.0f} ({row['escape_step_max']})"
            + (f", {never} never" if never else "")
        )  # fmt: skip
        target_step = row["val_target_step_median"]
        lines.append(
            f"| ({K}, {N}) | {recipe} | {int(steps):,} | {n} | {100 * row['target']:.0f}% | "
            f"{row['test_reaches_target']} of {n} | {100 * row['test_accuracy_min']:.1f} / "
            f"{100 * row['test_accuracy_median']:.1f} / {100 * row['test_accuracy_max']:.1f} | "
            f"{escape} | {f'{target_step:,.0f}' if target_step else 'never'} |"
        )
    return "\n".join(lines)


def write_outputs(runs: list[dict], folder: Path) -> None:
    summary = summarise(runs)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(runs, folder / "escape_ecdf.png")
    print(markdown_table(summary))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.plateau_study",
        description="Escape step and final accuracy of the reference MANN per recipe and seed.",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SETTING:RECIPE[:SEEDS[:STEPS]]",
        help=f"runs to do, e.g. K1N2:combined:0-15:2000; settings {', '.join(SETTINGS)}, "
        f"recipes {', '.join(RECIPES)} (default: every combination, --seeds, --steps)",
    )
    parser.add_argument("--seeds", default="0-15", help="e.g. 0-15 or 0,4,6 (default: 0-15)")
    parser.add_argument("--steps", type=int, help="steps per run (default: kit.train's)")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time (default: 2)")
    parser.add_argument("--plot", action="store_true", help="only redraw the figure and summary")
    parser.add_argument("--out", type=Path, default=OUT, help=f"folder (default: {OUT})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs_file = args.out / "runs.jsonl"
    runs = load_runs(runs_file)
    if args.plot:
        write_outputs(runs, args.out)
        return 0
    specs = []  # (setting, recipe, seeds, steps)
    for item in args.only or [f"{s}:{r}" for s in SETTINGS for r in RECIPES]:
        setting, recipe, seeds, steps = (item.split(":") + ["", ""])[:4]
        if setting not in SETTINGS or recipe not in RECIPES:
            parser.error(f"unknown SETTING:RECIPE {item!r}")
        steps = int(steps) if steps else args.steps or default_steps(*SETTINGS[setting])
        specs.append((setting, recipe, parse_seeds(seeds or args.seeds), steps))
    # Seed by seed, so that an interrupted study has as many seeds of every recipe.
    jobs = [
        (setting, recipe, seeds[i], steps)
        for i in range(max(len(spec[2]) for spec in specs))
        for setting, recipe, seeds, steps in specs
        if i < len(seeds)
    ]
    done = {(r["setting"], r["recipe"], r["seed"], r["steps"]) for r in runs}
    jobs = [job for job in jobs if job not in done]

    from data import load_splits

    _SPLITS.update(load_splits("default", progress=False))
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")  # the workers inherit _SPLITS
    with (
        ProcessPoolExecutor(args.workers, mp_context=context) as pool,
        open(runs_file, "a") as out,
    ):
        futures = [pool.submit(run_one, *job) for job in jobs]
        for count, future in enumerate(as_completed(futures), 1):
            run = future.result()
            out.write(json.dumps(run) + "\n")
            out.flush()
            runs.append(run)
            print(
                f"[{count}/{len(jobs)} {time.perf_counter() - started:.0f} s] {run['setting']} "
                f"{run['recipe']:<16} seed {run['seed']:>2}: escape {run['escape_step']}, "
                f"val target at {run['target_step']}, test {100 * run['test_accuracy']:.1f}% "
                f"({run['train_seconds']:.0f} s, load {run['load_before']})",
                flush=True,
            )
    write_outputs(runs, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
