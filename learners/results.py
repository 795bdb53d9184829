"""The benchmark's results: settings, published numbers, results files and the README table.

A results file is JSON, `{"runs": [entry, ...]}`, one entry per learner, setting and training
budget (`merge`), each holding what `learners.benchmark.run_one` measured and how (machine,
budget, steps, augmentation, load average, date). `format_table` prints the README's tables:
this kit's numbers beside the published ones, then the details of every run.
"""

from __future__ import annotations

import json
from pathlib import Path

from learners import LEARNERS
from publish.files import write_atomic

TASKS: dict[str, tuple[int, int]] = {  # name -> (N, K)
    "5w1s": (5, 1),
    "5w5s": (5, 5),
    "20w1s": (20, 1),
    "20w5s": (20, 5),
    "lake": (20, 1),
}
TASK_TITLES = {
    "5w1s": "5-way 1-shot",
    "5w5s": "5-way 5-shot",
    "20w1s": "20-way 1-shot",
    "20w5s": "20-way 5-shot",
    "lake": "Lake challenge error",
}
# Published Omniglot accuracies (%), 28x28, rotation-augmented meta-train, the
# Vinyals et al. split of 1200 meta-train characters (MANN: Santoro et al.'s own split).
PUBLISHED = {
    "MANN (Santoro et al. 2016)": {"5w1s": 82.8, "5w5s": 94.9},
    "Matching Networks (Vinyals et al. 2016)": {
        "5w1s": 98.1,
        "5w5s": 98.9,
        "20w1s": 93.8,
        "20w5s": 98.5,
    },
    "Prototypical Networks (Snell et al. 2017)": {
        "5w1s": 98.8,
        "5w5s": 99.7,
        "20w1s": 96.0,
        "20w5s": 98.9,
    },
    "MAML (Finn et al. 2017)": {"5w1s": 98.7, "5w5s": 99.9, "20w1s": 95.8, "20w5s": 98.9},
    "SNAIL (Mishra et al. 2018)": {"5w1s": 99.07, "5w5s": 99.78, "20w1s": 97.64, "20w5s": 99.36},
}
PUBLISHED_LAKE_ERROR = {  # % error on the 20 runs of Lake et al. 2015
    "People (Lake et al. 2015)": 4.5,
    "Bayesian Program Learning (Lake et al. 2015)": 3.3,
    "Siamese convnet (Koch et al. 2015)": 8.0,
}


def load_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    try:
        return json.loads(path.read_text())["runs"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(
            f"{path} is not a benchmark results file ({error}); move it away"
        ) from error


def save_results(path: Path, runs: list[dict]) -> None:
    """Write `runs` to `path` atomically (a half-written results file is never left)."""
    write_atomic(path, json.dumps({"runs": runs}, indent=2) + "\n")


def budget_of(entry: dict) -> float:
    """The run's training budget in seconds (older files hold only the time it trained)."""
    return entry.get("budget_seconds") or round(entry["train_seconds"], -1)


def merge(runs: list[dict], entry: dict) -> list[dict]:
    """`runs` with `entry` replacing any earlier entry for the same learner, task and budget."""

    def key(run: dict) -> tuple:
        return run["learner"], run["task"], budget_of(run)

    return [run for run in runs if key(run) != key(entry)] + [entry]


def format_cell(entry: dict | None) -> str:
    if entry is None:
        return "not measured yet"
    if entry["task"] == "lake":
        return f"{100 * entry['error_rate']:.1f}%"
    return f"{100 * entry['accuracy']:.1f} ± {100 * entry['ci95']:.1f}"


def augmentation_of(entry: dict) -> str:
    parts = ["rotations"] if entry.get("rotations") else []
    parts += ["distortions"] if entry.get("distort") else []
    return " + ".join(parts) or "none"


def format_table(runs: list[dict]) -> str:
    """The README's Markdown tables: accuracies (ours beside published), then run details.

    A cell lists every budget measured for that learner and setting, longest first (`merge`
    keeps one run per learner, setting and budget).
    """
    runs = sorted(
        runs,
        key=lambda r: (
            list(LEARNERS).index(r["learner"]),
            list(TASKS).index(r["task"]),
            -budget_of(r),
        ),
    )
    header = "| learner | " + " | ".join(TASK_TITLES[t] for t in TASKS) + " |"
    lines = [header, "|---" * (len(TASKS) + 1) + "|"]
    for learner in LEARNERS:
        cells = []
        for task in TASKS:
            measured = [r for r in runs if (r["learner"], r["task"]) == (learner, task)]
            cells.append(
                "; ".join(f"{format_cell(r)} ({budget_of(r):.0f} s)" for r in measured)
                or format_cell(None)
            )
        quick = any(r["quick"] for r in runs if r["learner"] == learner)
        lines.append(
            f"| **{learner}** (this kit{', QUICK' if quick else ''}) | " + " | ".join(cells) + " |"
        )
    for name, scores in PUBLISHED.items():
        cells = [f"{scores[t]}" if t in scores else "" for t in TASKS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name, error in PUBLISHED_LAKE_ERROR.items():
        lines.append(f"| {name} | " + " | " * (len(TASKS) - 1) + f"{error}% |")
    lines += [
        "",
        "| learner | setting | result | training | steps x batch | machine | augmentation | amp"
        + " | compile | load avg (start, end) | date |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        tasks = (
            f"{run['test_items']} test drawings"
            if run["task"] == "lake"
            else f"{run['test_tasks']} tasks"
        )
        lines.append(
            f"| {run['learner']}{' (quick)' if run['quick'] else ''} | {run['task']} "
            f"| {format_cell(run)} ({tasks}) | {run['train_seconds']:.0f} s "
            f"| {run['steps']} x {run['batch_size']} | {run['machine']} | {augmentation_of(run)} "
            f"| {run['amp']} | {run['compile']} "
            f"| {run['load_average'][0]}, {run['load_average'][1]} | {run['date']} |"
        )
    return "\n".join(lines)
