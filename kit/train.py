"""Train and evaluate a black-box meta-learner (MANN) on N-way, K-shot Omniglot tasks.

    python -m kit.train                       # 1-shot 2-way, reference solution, defaults
    python -m kit.train -K 1 -N 3 --steps 4000
    python -m kit.train --code my_homework/   # your own load_data.py and models.py

Letters: B tasks per batch, K shots, N classes, 784 = 28 x 28 pixels.

One training step is ordinary supervised learning on a batch of tasks: the learner reads each
task's labelled support set and predicts its query labels, and the loss is the cross-entropy of
those query predictions. `evaluate` measures query accuracy on held-out characters (meta-val or
meta-test) over a fixed, seeded set of tasks, so every run is scored on the same tasks.

This module is the one home of `train_step`, `evaluate` and `train`: the grader and the
notebooks import them from here.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import math
import platform
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from kit.loader import task_loader
from kit.submission import Submission, default_code, has_reference, load_submission

EVAL_SEED = 1234  # val and test tasks are the same for every run, whatever its --seed

# Training steps by (K, N), measured on 2 CPU cores with the other defaults (see the README's
# results table). 2-shot 2-way sits at chance for ~3,000 steps before it takes off.
DEFAULT_STEPS = {(1, 2): 3000, (2, 2): 6000, (1, 3): 10000, (1, 4): 16000}


def default_steps(num_shots: int, num_classes: int) -> int:
    """The homework grid's measured budgets; 4,000 steps per class for any other task."""
    return DEFAULT_STEPS.get((num_shots, num_classes), 4000 * num_classes)


@dataclass
class TrainConfig:
    """Everything that defines a run; saved with its metrics and checkpoint."""

    num_shots: int = 1  # K
    num_classes: int = 2  # N
    hidden_dim: int = 128
    batch_size: int = 128  # tasks per step; larger batches cost little more on a CPU
    learning_rate: float = 1e-3  # Adam
    steps: int | None = None  # None: default_steps(K, N)
    eval_every: int = 250  # steps between meta-val evaluations
    val_tasks: int = 500
    test_tasks: int = 1000  # >= 1000 keeps the 95% interval under about 2 points
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    code: str = field(default_factory=default_code)  # solutions/; in the package, its folder
    sampler: str = "auto"  # batched | generator | auto (batched for solutions/)
    num_workers: int = 0  # DataLoader workers for --sampler generator
    split: str = "default"  # default | alphabet
    out: str = "runs/K{num_shots}N{num_classes}"

    def __post_init__(self) -> None:
        if self.steps is None:
            self.steps = default_steps(self.num_shots, self.num_classes)

    def run_dir(self) -> Path:
        return Path(self.out.format(num_shots=self.num_shots, num_classes=self.num_classes))


@dataclass
class Evaluation:
    """Query accuracy over `num_tasks` tasks: the mean of per-task accuracies."""

    accuracy: float
    ci95: float  # half-width of the normal 95% confidence interval of the mean
    loss: float
    num_tasks: int

    def __str__(self) -> str:
        return f"{100 * self.accuracy:.1f}% +/- {100 * self.ci95:.1f} ({self.num_tasks} tasks)"


@dataclass
class RunResult:
    config: TrainConfig
    model: nn.Module
    history: list[dict] = field(default_factory=list)  # one row per meta-val evaluation
    test: Evaluation | None = None
    train_seconds: float = 0.0  # optimisation only, evaluations excluded


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when it is there; asking for `cuda` without one is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    return torch.device(device)


def query_accuracy(preds: Tensor, labels: Tensor) -> Tensor:
    """Per-task accuracy of the query row: `[B]` from preds and labels `[B, K+1, N, N]`."""
    return (preds[:, -1].argmax(-1) == labels[:, -1].argmax(-1)).float().mean(-1)


def train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor, labels: Tensor
) -> tuple[float, float]:
    """One optimisation step on a batch `[B, K+1, N, 784]`, `[B, K+1, N, N]`.

    Returns the batch's query loss and query accuracy (before the update).
    """
    preds = model(images, labels)  # [B, K+1, N, N]
    loss = model.loss_function(preds, labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), query_accuracy(preds.detach(), labels).mean().item()


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: np.ndarray,
    num_classes: int,
    num_shots: int,
    num_tasks: int = 1000,
    seed: int = EVAL_SEED,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    generator: Callable | None = None,
) -> Evaluation:
    """Query accuracy of `model` on `num_tasks` tasks drawn (seeded) from `images [C, D, 784]`.

    Runs in eval mode under no_grad and restores the model's previous mode. The same seed
    gives the same tasks, so two models evaluated with it are compared on identical tasks.
    The tasks come from the kit's batched sampler, or from `generator` (a `DataGenerator`
    class) when given: the student package has no batched sampler.
    """
    was_training = model.training
    model.eval()
    accuracies, losses = [], []
    try:
        for size, batch in evaluation_batches(
            images, num_classes, num_shots, num_tasks, seed, batch_size, generator
        ):
            batch_images, batch_labels = (torch.as_tensor(a).to(device) for a in batch)
            preds = model(batch_images, batch_labels)
            accuracies.append(query_accuracy(preds, batch_labels).cpu())
            losses.append(model.loss_function(preds, batch_labels).item() * size)
    finally:
        model.train(was_training)
    per_task = torch.cat(accuracies).double()
    std = per_task.std().item() if num_tasks > 1 else 0.0
    return Evaluation(
        accuracy=per_task.mean().item(),
        ci95=1.96 * std / math.sqrt(num_tasks),
        loss=sum(losses) / num_tasks,
        num_tasks=num_tasks,
    )


def evaluation_batches(
    images: np.ndarray,
    num_classes: int,
    num_shots: int,
    num_tasks: int,
    seed: int,
    batch_size: int,
    generator: Callable | None = None,
) -> Iterable[tuple[int, tuple]]:
    """`(size, (images [size, K+1, N, 784], labels [size, K+1, N, N]))` batches of `num_tasks`
    seeded tasks: from the kit's batched sampler, or from a `generator(images, N, K, seed=)`."""
    if generator is not None:
        tasks = generator(images, num_classes, num_shots, seed=seed)
        loader = iter(task_loader(tasks, batch_size, seed))
        for start in range(0, num_tasks, batch_size):
            size = min(batch_size, num_tasks - start)
            batch_images, batch_labels = next(loader)
            yield size, (batch_images[:size], batch_labels[:size])
        return
    from kit.episodes import sample_tasks  # the kit's batched sampler: not in the package

    rng = np.random.default_rng(seed)
    for start in range(0, num_tasks, batch_size):
        size = min(batch_size, num_tasks - start)
        yield size, sample_tasks(images, num_classes, num_shots, size, rng)


def batched_sampler_available() -> bool:
    """Whether the kit's batched sampler is here (the repository: yes; the student package: no)."""
    return importlib.util.find_spec("kit.episodes") is not None


def training_batches(
    config: TrainConfig, submission: Submission, train_images: np.ndarray
) -> Iterable[tuple[Tensor, Tensor]]:
    """Meta-train batches from the kit's batched sampler or the submission's DataGenerator."""
    sampler = config.sampler
    if sampler == "auto":
        reference = submission.folder.name == "solutions" and batched_sampler_available()
        sampler = "batched" if reference else "generator"
    if sampler == "batched":
        from kit.episodes import TaskBatches

        return TaskBatches(
            train_images, config.num_classes, config.num_shots, config.batch_size, config.seed
        )
    if sampler == "generator":
        generator = submission.load_data.DataGenerator(
            train_images, config.num_classes, config.num_shots, seed=config.seed
        )
        return task_loader(generator, config.batch_size, config.seed, config.num_workers)
    raise ValueError(f"unknown sampler {sampler!r}: use batched, generator or auto")


def train(
    config: TrainConfig,
    splits: dict | None = None,
    progress: bool = True,
    on_eval: Callable[[dict], None] | None = None,
) -> RunResult:
    """Train a MANN as `config` says; evaluate on meta-val every `eval_every` steps and on
    meta-test at the end.

    Args:
        splits: the output of `data.load_splits(config.split)`; loaded when not given.
        on_eval: called with each history row (notebooks use it to draw live curves).
    """
    device = resolve_device(config.device)
    if splits is None:
        from data import load_splits  # imported here so that `--help` answers instantly

        splits = load_splits(config.split, progress=progress)
    submission = load_submission(config.code)
    torch.manual_seed(config.seed)
    model = submission.models.MANN(config.num_classes, config.num_shots, config.hidden_dim)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    result = RunResult(config, model)
    eval_args = {"num_classes": config.num_classes, "num_shots": config.num_shots, "device": device}
    if not batched_sampler_available():  # the student package: evaluate on the student's tasks
        eval_args["generator"] = submission.load_data.DataGenerator

    batches = iter(training_batches(config, submission, splits["train"].images))
    bar = tqdm(
        range(1, config.steps + 1),
        desc=f"K={config.num_shots} N={config.num_classes}",
        disable=not progress,
        unit="step",
        dynamic_ncols=True,
    )
    window: list[tuple[float, float]] = []
    started = time.perf_counter()
    for step in bar:
        images, labels = (tensor.to(device, non_blocking=True) for tensor in next(batches))
        window.append(train_step(model, optimizer, images, labels))
        if step % config.eval_every == 0 or step == config.steps:
            result.train_seconds += time.perf_counter() - started
            val = evaluate(model, splits["val"].images, num_tasks=config.val_tasks, **eval_args)
            train_loss, train_accuracy = np.mean(window, axis=0)
            row = {
                "step": step,
                "train_loss": float(train_loss),
                "train_accuracy": float(train_accuracy),
                "val_loss": val.loss,
                "val_accuracy": val.accuracy,
                "val_ci95": val.ci95,
                "train_seconds": result.train_seconds,
            }
            result.history.append(row)
            window.clear()
            bar.set_postfix(loss=f"{val.loss:.3f}", val_acc=f"{100 * val.accuracy:.1f}%")
            if on_eval is not None:
                on_eval(row)
            started = time.perf_counter()
    bar.close()
    result.test = evaluate(model, splits["test"].images, num_tasks=config.test_tasks, **eval_args)
    return result


def save_run(result: RunResult, run_dir: Path) -> None:
    """Write `metrics.csv`, `summary.json`, `learning_curve.png` and `checkpoint.pt`."""
    from kit.plots import plot_learning_curves

    run_dir.mkdir(parents=True, exist_ok=True)
    config = asdict(result.config)
    with open(run_dir / "metrics.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(result.history[0]))
        writer.writeheader()
        writer.writerows(result.history)
    summary = {
        "config": config,
        "test": asdict(result.test),
        "steps": result.config.steps,
        "train_seconds": round(result.train_seconds, 2),
        "device": str(next(result.model.parameters()).device),
        "machine": machine_description(),
        "torch": torch.__version__,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    K, N = result.config.num_shots, result.config.num_classes
    label = f"K={K}, N={N}"
    plot_learning_curves(
        {label: result.history},
        run_dir / "learning_curve.png",
        title=f"MANN, {N}-way {K}-shot: test {result.test}",
        chance={label: 1 / N},
    )
    torch.save({"config": config, "model": result.model.state_dict()}, run_dir / "checkpoint.pt")


def machine_description() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads"


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool]:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        prog="python -m kit.train",
        description="Train a MANN on N-way K-shot Omniglot tasks and evaluate it on meta-test.",
    )
    add = parser.add_argument
    add(
        "-K",
        "--num-shots",
        type=int,
        default=defaults.num_shots,
        help=f"K, labelled examples per class (default: {defaults.num_shots})",
    )
    add(
        "-N",
        "--num-classes",
        type=int,
        default=defaults.num_classes,
        help=f"N, classes per task (default: {defaults.num_classes})",
    )
    add(
        "--hidden-dim",
        type=int,
        default=defaults.hidden_dim,
        help=f"units of the first LSTM (default: {defaults.hidden_dim})",
    )
    add(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"tasks per training step (default: {defaults.batch_size})",
    )
    add(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help=f"Adam learning rate (default: {defaults.learning_rate})",
    )
    add(
        "--steps",
        type=int,
        default=None,
        help="training steps (default: 3000, 6000, 10000 and 16000 for (K, N) = (1, 2), "
        "(2, 2), (1, 3) and (1, 4); 4000 * N otherwise)",
    )
    add(
        "--eval-every",
        type=int,
        default=defaults.eval_every,
        help=f"steps between meta-val evaluations (default: {defaults.eval_every})",
    )
    add(
        "--val-tasks",
        type=int,
        default=defaults.val_tasks,
        help=f"meta-val tasks per evaluation (default: {defaults.val_tasks})",
    )
    add(
        "--test-tasks",
        type=int,
        default=defaults.test_tasks,
        help=f"meta-test tasks of the final evaluation (default: {defaults.test_tasks})",
    )
    add(
        "--seed",
        type=int,
        default=defaults.seed,
        help=f"seed of the weights and the training tasks (default: {defaults.seed})",
    )
    add(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default=defaults.device,
        help=f"where to train; auto takes CUDA when present (default: {defaults.device})",
    )
    add(
        "--code",
        default=defaults.code,
        help="folder holding load_data.py and models.py"
        + (": solutions, assignment or your own" if has_reference() else "")
        + f" (default: {defaults.code})",
    )
    add(
        "--sampler",
        choices=("auto", "batched", "generator"),
        default=defaults.sampler,
        help="training tasks from the kit's batched sampler or from the code's DataGenerator; "
        f"auto uses batched for solutions/ only (default: {defaults.sampler})",
    )
    add(
        "--num-workers",
        type=int,
        default=defaults.num_workers,
        help=f"DataLoader workers for --sampler generator (default: {defaults.num_workers})",
    )
    add(
        "--split",
        choices=("default", "alphabet"),
        default=defaults.split,
        help=f"character split (default: {defaults.split})",
    )
    add(
        "--out",
        default=defaults.out,
        help=f"run folder; {{num_shots}} and {{num_classes}} are filled in (default: {defaults.out})",
    )
    add(
        "--dry-run",
        action="store_true",
        help="a few steps and tasks, to check that everything runs (default: off)",
    )
    add("--no-progress", action="store_true", help="no progress bars (default: off)")
    args = parser.parse_args(argv)
    config = TrainConfig(
        **{k: v for k, v in vars(args).items() if k not in ("dry_run", "no_progress")}
    )
    if args.dry_run:
        config.steps, config.eval_every, config.val_tasks, config.test_tasks = 20, 10, 50, 50
        print(
            "dry run: 20 steps and 50 tasks per evaluation check that everything runs; "
            f"expect chance-level accuracy (about {100 / config.num_classes:.0f}%)"
        )
    for name in (
        "num_shots",
        "num_classes",
        "batch_size",
        "steps",
        "eval_every",
        "val_tasks",
        "test_tasks",
    ):
        if getattr(config, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if config.num_classes < 2:
        parser.error("--num-classes must be at least 2: a 1-way task has nothing to learn")
    if config.num_shots > 19:
        parser.error("--num-shots must be at most 19: Omniglot has 20 drawings per character")
    return config, not args.no_progress


def unimplemented_message(error: NotImplementedError) -> str:
    """One line naming the function that raised `error` and its file, for the CLI.

    A DataLoader worker re-raises a student's error in the main process with the worker's
    traceback as text only, so the innermost frame is read from that text when it is there.
    """
    frames = re.findall(r'File "([^"]+)", line \d+, in (\w+)', str(error))
    if frames:
        filename, function = frames[-1]
    else:
        innermost = traceback.extract_tb(error.__traceback__)[-1]
        filename, function = innermost.filename, innermost.name
    reference = ", or pass --code solutions to train the reference" if has_reference() else ""
    return (
        f"{function}() in {filename} is not implemented yet (NotImplementedError): follow the "
        f"numbered steps in its docstring{reference}"
    )


def main(argv: list[str] | None = None) -> int:
    # Imported here, not at module level: the autograder's child imports this module without
    # the data package (it must never reach the meta-test data).
    from data.omniglot import OmniglotDataError

    config, progress = parse_args(argv)
    print("config:", json.dumps(asdict(config)))
    try:
        result = train(config, progress=progress)
    except (FileNotFoundError, ValueError, OmniglotDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except NotImplementedError as error:
        print(f"error: {unimplemented_message(error)}", file=sys.stderr)
        return 1
    run_dir = config.run_dir()
    save_run(result, run_dir)
    print(
        f"meta-test accuracy: {result.test}  after {config.steps} steps, "
        f"{result.train_seconds:.0f} s of training on {machine_description()}"
    )
    print(f"wrote {run_dir}/ (metrics.csv, summary.json, learning_curve.png, checkpoint.pt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
