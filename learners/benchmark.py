"""Train every learner on every task setting, evaluate it, and print the comparison table.

    python -m learners.benchmark                        # everything, 15 min per learner and task
    python -m learners.benchmark --learners attention --tasks 5w1s --seconds 600
    python -m learners.benchmark --quick                # a tiny budget: checks that all runs
    python -m learners.benchmark --table results/benchmark.json   # print the Markdown table

Letters: B tasks per batch, K shots, N classes, 784 = 28 x 28 pixels.

Settings: 5-way 1-shot (`5w1s`), 5-way 5-shot, 20-way 1-shot, 20-way 5-shot on the default
split (meta-train on its 1100 characters, accuracy over `--test-tasks` meta-test tasks with a
95% interval), and `lake`: Lake et al.'s 20-way within-alphabet one-shot challenge, trained on
the background alphabets only (the "alphabet" split's meta-train and meta-val characters) and
scored by its error rate on the 20 official runs. Each meta-learner trains for the same
wall-clock budget per setting; the fine-tuning baseline pretrains once per split for that
budget and is then fine-tuned per task. Meta-train characters are augmented with rotations by
multiples of 90 degrees as new characters, as in the published results (`--no-rotations`).

Results are merged into `--out` (JSON, one entry per learner, setting and budget, rewritten
atomically after every run; `learners.results`), so partial runs add up to a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from learners import LEARNERS, build_learner
from learners.common import Autocast, with_rotations
from learners.fit import Budget, meta_train
from learners.results import (
    TASKS,
    format_cell,
    format_table,
    load_results,
    merge,
    save_results,
)

CPU_IMAGES_PER_STEP = 200  # auto batch size: B = this / ((K+1)*N) tasks per step
GPU_IMAGES_PER_STEP = 3200
CPU_EVAL_IMAGES = 2000  # images per evaluation batch (memory, not speed, sets these)
GPU_EVAL_IMAGES = 40000


@dataclass
class Options:
    learners: list[str]
    tasks: list[str]
    seconds: float
    max_steps: int | None
    batch_size: int  # 0: auto
    learning_rate: float
    test_tasks: int
    device: torch.device
    amp: bool
    compile: bool
    rotations: bool
    distort: bool
    finetune_mode: str
    seed: int
    quick: bool
    lake_runs: str | None
    progress: bool


def machine_description(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.machine()} CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def images_per_task(task: str) -> int:
    N, K = TASKS[task]
    return (K + 1) * N


def auto_batch_size(task: str, device: torch.device) -> int:
    per_step = GPU_IMAGES_PER_STEP if device.type == "cuda" else CPU_IMAGES_PER_STEP
    return max(1, per_step // images_per_task(task))


def load_training_data(split: str, rotations: bool, progress: bool) -> dict:
    """Meta-train images (rotations added) and meta-test images of `split`."""
    import numpy as np

    from data import load_splits

    splits = load_splits(split, progress=progress)
    if split == "alphabet":  # Lake's challenge: all background alphabets train, none held out
        train = np.concatenate([splits["train"].images, splits["val"].images])
        names = splits["train"].names + splits["val"].names
    else:
        train, names = splits["train"].images, splits["train"].names
    alphabet_of = np.array([name.rsplit("/", 1)[0] for name in names])
    groups = [np.flatnonzero(alphabet_of == a) for a in np.unique(alphabet_of)]
    if rotations:  # rotation r of character c is character r*C + c of `with_rotations`
        groups = [np.concatenate([g + r * len(train) for r in range(4)]) for g in groups]
    return {
        "train": with_rotations(train) if rotations else train,
        "alphabets": groups,  # character indices of each alphabet (all its rotations)
        "test": splits["test"].images,
    }


def prepare(model: nn.Module, options: Options) -> nn.Module:
    """Move to the device, compile the encoder and wrap in autocast as the options say."""
    model = model.to(options.device)
    if options.compile:
        model.encoder = torch.compile(model.encoder)
    return Autocast(model, options.device.type) if options.amp else model


def run_one(
    learner: str, task: str, options: Options, data: dict, pretrained: dict, lake_runs
) -> dict:
    """Train (or reuse the pretraining of) `learner` for `task`, evaluate it, return the entry."""
    from kit.train import evaluate
    from learners import lake
    from learners.finetune import pretrain

    N, K = TASKS[task]
    split = "alphabet" if task == "lake" else "default"
    budget = Budget(options.seconds, options.max_steps)
    torch.manual_seed(options.seed)
    batch_size = options.batch_size or auto_batch_size(task, options.device)
    load_before = os.getloadavg()[0]
    if learner == "finetune":
        batch_size = options.batch_size or 256
        if split not in pretrained:  # one pretraining per split serves every N and K
            model = build_learner(
                learner, N, K, num_pretrain_classes=len(data["train"]), mode=options.finetune_mode
            )
            model = model.to(options.device)
            steps, seconds = pretrain(
                model,
                data["train"],
                seconds=budget.seconds,
                max_steps=budget.max_steps,
                batch_size=batch_size,
                seed=options.seed,
                device=options.device,
                autocast=options.amp,
                progress=options.progress,
            )
            pretrained[split] = (model, steps, seconds)
        model, steps, seconds = pretrained[split]
        model.num_classes, model.num_shots = N, K
        runnable = Autocast(model, options.device.type) if options.amp else model
        train_accuracy = None
    else:
        runnable = prepare(build_learner(learner, N, K), options)
        log = meta_train(
            runnable,
            data["train"],
            N,
            K,
            budget,
            batch_size=batch_size,
            learning_rate=options.learning_rate,
            seed=options.seed,
            device=options.device,
            progress=options.progress,
            groups=data["alphabets"] if task == "lake" else None,  # Lake's runs: one alphabet
            distort=options.distort,
        )
        steps, seconds, train_accuracy = log.steps, log.seconds, log.final_train_accuracy
    entry = {
        "learner": learner,
        "task": task,
        "num_classes": N,
        "num_shots": K,
        "split": split,
        "budget_seconds": options.seconds,
        "train_seconds": round(seconds, 1),
        "steps": steps,
        "batch_size": batch_size,
        "train_accuracy": train_accuracy,
    }
    started = time.perf_counter()
    if task == "lake":
        entry["error_rate"] = lake.error_rate(runnable, lake_runs, options.device)
        entry["test_items"] = lake.RUNS * lake.WAYS
    else:
        eval_images = GPU_EVAL_IMAGES if options.device.type == "cuda" else CPU_EVAL_IMAGES
        result = evaluate(
            runnable,
            data["test"],
            N,
            K,
            num_tasks=options.test_tasks,
            batch_size=max(1, eval_images // images_per_task(task)),
            device=options.device,
        )
        entry.update(accuracy=result.accuracy, ci95=result.ci95, test_tasks=result.num_tasks)
    entry.update(
        eval_seconds=round(time.perf_counter() - started, 1),
        device=options.device.type,
        machine=machine_description(options.device),
        load_average=[round(load_before, 2), round(os.getloadavg()[0], 2)],
        amp=options.amp,
        compile=options.compile,
        rotations=options.rotations,
        distort=options.distort,
        finetune_mode=options.finetune_mode if learner == "finetune" else None,
        quick=options.quick,
        seed=options.seed,
        torch=torch.__version__,
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    return entry


def parse_args(argv: list[str] | None) -> tuple[Options, Path, list[Path] | None]:
    parser = argparse.ArgumentParser(
        prog="python -m learners.benchmark",
        description="Train and compare the kit's black-box learners and the fine-tuning "
        "baseline on Omniglot (default split) and Lake et al.'s one-shot challenge.",
    )
    add = parser.add_argument
    add(
        "--learners",
        default=",".join(LEARNERS),
        help=f"comma-separated learners (default: {','.join(LEARNERS)})",
    )
    add(
        "--tasks",
        default=",".join(TASKS),
        help=f"comma-separated settings (default: {','.join(TASKS)})",
    )
    add(
        "--seconds",
        type=float,
        default=900.0,
        help="training budget per learner and setting, in seconds (default: 900)",
    )
    add(
        "--max-steps",
        type=int,
        default=None,
        help="also stop after this many steps (default: no cap)",
    )
    add(
        "--batch-size",
        type=int,
        default=0,
        help="tasks per step; 0 picks by setting and device, 256 drawings for fine-tuning's pretraining (default: 0)",
    )
    add(
        "--learning-rate",
        type=float,
        default=1e-3,
        help="Adam learning rate, annealed by a cosine over the budget (default: 0.001)",
    )
    add("--test-tasks", type=int, default=1000, help="meta-test tasks per setting (default: 1000)")
    add(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto takes CUDA when present (default: auto)",
    )
    add(
        "--amp",
        choices=("auto", "on", "off"),
        default="auto",
        help="bfloat16 mixed precision; auto: on with CUDA only (default: auto)",
    )
    add("--compile", action="store_true", help="torch.compile the conv encoder (default: off)")
    add(
        "--no-rotations",
        action="store_true",
        help="no rotation augmentation of meta-train characters (default: off)",
    )
    add(
        "--distort",
        action="store_true",
        help="also a random small affine distortion of every meta-train drawing, after Koch "
        "et al. (default: off)",
    )
    add(
        "--finetune-mode",
        choices=("head", "all"),
        default="head",
        help="fine-tune the last layer or all layers (default: head)",
    )
    add(
        "--seed",
        type=int,
        default=0,
        help="seed of the weights and the training tasks (default: 0)",
    )
    add(
        "--lake-runs",
        default=None,
        help="Lake's all_runs.zip (default: acquired by data/: $OMNIGLOT_SOURCE/all_runs.zip "
        "or a download, verified and cached)",
    )
    add(
        "--out",
        default=None,
        help="results JSON, merged into (default: results/benchmark.json, results/benchmark-quick.json with --quick)",
    )
    add(
        "--quick",
        action="store_true",
        help="tiny budget: 10 steps of 4 tasks (at most 30 s), 100 test tasks; checks that every run works (default: off)",
    )
    add(
        "--table",
        metavar="JSON",
        nargs="+",
        default=None,
        help="only print the Markdown table of one or more results files, later files "
        "winning for the same learner and setting (default: off)",
    )
    add("--no-progress", action="store_true", help="no progress bars (default: off)")
    args = parser.parse_args(argv)
    learners = [name for name in args.learners.split(",") if name]
    tasks = [name for name in args.tasks.split(",") if name]
    for name in learners:
        if name not in LEARNERS:
            parser.error(f"unknown learner {name!r}; choose from {','.join(LEARNERS)}")
    for name in tasks:
        if name not in TASKS:
            parser.error(f"unknown setting {name!r}; choose from {','.join(TASKS)}")
    if args.seconds <= 0 or args.test_tasks < 1 or args.batch_size < 0:
        parser.error("--seconds and --test-tasks must be positive, --batch-size at least 0")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else "cpu"
        if args.device == "auto"
        else args.device
    )
    options = Options(
        learners=learners,
        tasks=tasks,
        seconds=30.0 if args.quick else args.seconds,
        max_steps=10 if args.quick else args.max_steps,
        batch_size=args.batch_size or (4 if args.quick else 0),
        learning_rate=args.learning_rate,
        test_tasks=100 if args.quick else args.test_tasks,
        device=device,
        amp=args.amp == "on" or (args.amp == "auto" and device.type == "cuda"),
        compile=args.compile,
        rotations=not args.no_rotations,
        distort=args.distort,
        finetune_mode=args.finetune_mode,
        seed=args.seed,
        quick=args.quick,
        lake_runs=args.lake_runs,
        progress=not args.no_progress,
    )
    out = Path(
        args.out or ("results/benchmark-quick.json" if args.quick else "results/benchmark.json")
    )
    return options, out, [Path(path) for path in args.table] if args.table else None


def run_benchmark(options: Options, out: Path) -> list[dict]:
    """Every learner on every setting of `options`; each entry merged into `out` as it ends."""
    from learners import lake

    runs = load_results(out)
    lake_runs = lake.load_runs(options.lake_runs) if "lake" in options.tasks else None
    data: dict[str, dict] = {}
    for learner in options.learners:
        pretrained: dict = {}
        for task in options.tasks:
            split = "alphabet" if task == "lake" else "default"
            if split not in data:
                data[split] = load_training_data(split, options.rotations, options.progress)
            entry = run_one(learner, task, options, data[split], pretrained, lake_runs)
            runs = merge(runs, entry)
            save_results(out, runs)
            print(
                f"{learner} {task}: {format_cell(entry)} after {entry['train_seconds']:.0f} s, "
                f"{entry['steps']} steps on {entry['machine']}",
                flush=True,
            )
    return runs


def main(argv: list[str] | None = None) -> int:
    from data import OmniglotDataError

    options, out, table = parse_args(argv)
    try:
        if table is not None:
            runs: list[dict] = []
            for path in table:
                if not path.is_file():
                    raise FileNotFoundError(f"{path} does not exist: run the benchmark first")
                for entry in load_results(path):
                    runs = merge(runs, entry)
            print(format_table(runs))
            return 0
        printable = {
            k: str(v) if isinstance(v, torch.device) else v for k, v in vars(options).items()
        }
        print("options:", json.dumps(printable), flush=True)
        runs = run_benchmark(options, out)
    except (FileNotFoundError, ValueError, OmniglotDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_table(runs))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
