"""Learning-curve figures shared by the training script and the notebooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; notebooks switch back to inline themselves
import matplotlib.pyplot as plt
import numpy as np


def plot_learning_curves(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | Path | None = None,
    title: str = "Meta-learning curves",
    chance: Mapping[str, float] | None = None,
) -> plt.Figure:
    """Query loss and accuracy against training steps, one line per run.

    Args:
        runs: label -> history rows as written by `kit.train` (keys `step`, `val_loss`,
            `val_accuracy`, and optionally `train_loss`, `train_accuracy`).
        path: where to save the PNG (parent folders are created); `None` saves nothing.
        chance: label -> chance accuracy (1/N), drawn as a dotted line per run.
    """
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    show_train = len(runs) == 1
    for index, (label, history) in enumerate(runs.items()):
        color = f"C{index}"
        steps = [row["step"] for row in history]
        val_loss_label = "meta-val" if show_train else label
        loss_ax.plot(steps, [row["val_loss"] for row in history], color=color, label=val_loss_label)
        acc_ax.plot(
            steps, [100 * row["val_accuracy"] for row in history], color=color, label=val_loss_label
        )
        if show_train and "train_loss" in history[0]:
            loss_ax.plot(
                steps,
                [row["train_loss"] for row in history],
                color=color,
                alpha=0.4,
                linestyle="--",
                label="meta-train (mean since last eval)",
            )
            acc_ax.plot(
                steps,
                [100 * row["train_accuracy"] for row in history],
                color=color,
                alpha=0.4,
                linestyle="--",
                label="meta-train (mean since last eval)",
            )
        if chance and label in chance:
            acc_ax.axhline(
                100 * chance[label],
                color=color,
                linestyle=":",
                linewidth=1,
                label=f"chance (1/N) {label}" if not show_train else "chance (1/N)",
            )
    loss_ax.set(xlabel="training step", ylabel="query cross-entropy", title="Query loss")
    acc_ax.set(
        xlabel="training step", ylabel="query accuracy (%)", title="Query accuracy", ylim=(0, 100)
    )
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


# Tasks and predictions drawn as images. Letters: B tasks, K shots, N classes, 784 = 28 x 28.


def _draw_task(figure, images, labels, title: str) -> None:
    """Draw one task `[K+1, N, 784]`, `[K+1, N, N]` as a (K+1) x N grid into `figure`: the
    support rows titled by their shot, the last row "query", with "(shuffled)" when its labels
    are out of class order and "(class order)" when they are not."""
    K_plus_1, N, _ = images.shape
    query_classes = labels[-1].argmax(-1)  # [N]
    shuffled = bool((query_classes != np.arange(N)).any())
    axes = figure.subplots(K_plus_1, N, squeeze=False)
    for row in range(K_plus_1):
        for column in range(N):
            ax = axes[row, column]
            ax.imshow(images[row, column].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            is_query = row == K_plus_1 - 1
            ax.set_xlabel(f"label {int(labels[row, column].argmax())}", fontsize=9)
            for spine in ax.spines.values():
                spine.set_color("C1" if is_query else "0.6")
                spine.set_linewidth(2 if is_query else 1)
            if column == 0:
                order = "shuffled" if shuffled else "class order"
                ax.set_ylabel(
                    f"query\n({order})" if is_query else f"support\nshot {row}", fontsize=9
                )
    figure.suptitle(title, fontsize=11)


def _numpy(array):
    """A NumPy view of a NumPy array or a (CPU or CUDA) torch tensor."""
    return array.detach().cpu().numpy() if hasattr(array, "detach") else array


def plot_task(
    images,
    labels,
    path: str | Path | None = None,
    title: str | None = None,
) -> plt.Figure:
    """One task as a grid: the support rows with their labels, then the query row.

    Args:
        images: `[K+1, N, 784]`, rows 0..K-1 the support set, row K the query set (NumPy
            array or torch tensor).
        labels: `[K+1, N, N]` one-hot; each image is captioned with its label's index.
        path: where to save the PNG; `None` saves nothing.
    """
    images, labels = _numpy(images), _numpy(labels)
    K_plus_1, N, _ = images.shape
    if title is None:
        title = f"One {N}-way {K_plus_1 - 1}-shot task (orange frame: query row)"
    fig = plt.figure(figsize=(1.3 * N + 0.8, 1.4 * K_plus_1 + 0.6), layout="constrained")
    _draw_task(fig, images, labels, title)
    _save(fig, path)
    return fig


def plot_tasks(
    images,
    labels,
    count: int = 3,
    path: str | Path | None = None,
    title: str | None = None,
) -> plt.Figure:
    """The first `count` tasks of a batch side by side, each drawn as by `plot_task`.

    Args:
        images: `[B, K+1, N, 784]`; labels: `[B, K+1, N, N]` (NumPy arrays or torch tensors).
    """
    images, labels = _numpy(images), _numpy(labels)
    count = min(count, images.shape[0])
    _, K_plus_1, N, _ = images.shape
    fig = plt.figure(figsize=(count * (1.3 * N + 0.8), 1.4 * K_plus_1 + 1.0), layout="constrained")
    for index, subfigure in enumerate(fig.subfigures(1, count, wspace=0.05)):
        _draw_task(subfigure, images[index], labels[index], f"task {index}")
    fig.suptitle(
        title
        or f"{count} tasks of a batch: each has its own characters and query order "
        "(orange frame: query row)",
        fontsize=12,
    )
    _save(fig, path)
    return fig


def plot_predictions(
    images,
    labels,
    preds,
    count: int = 4,
    path: str | Path | None = None,
    title: str = "Query predictions on meta-test tasks",
) -> plt.Figure:
    """Correct (top row) and wrong (bottom row) query predictions, each with its task's classes.

    Each example shows the query image, then the first support drawing of each of the N
    classes: the true class framed green, a wrong prediction framed red.

    Args:
        images: `[B, K+1, N, 784]`; labels: `[B, K+1, N, N]` one-hot; preds: `[B, K+1, N, N]`
            logits from the model (NumPy arrays or torch tensors).
        count: examples per row (fewer when the batch holds fewer correct or wrong ones).
    """
    images, labels, preds = _numpy(images), _numpy(labels), _numpy(preds)
    N = images.shape[2]
    true = labels[:, -1].argmax(-1)  # [B, N]
    guess = preds[:, -1].argmax(-1)  # [B, N]
    examples = {
        "correct": np.argwhere(true == guess)[:count],  # rows of (task, query column)
        "wrong": np.argwhere(true != guess)[:count],
    }
    fig = plt.figure(figsize=(count * (1.1 * (N + 1) + 0.3), 5.0), layout="constrained")
    for subfigure, (kind, found) in zip(fig.subfigures(2, 1, hspace=0.08), examples.items()):
        subfigure.suptitle(f"{kind} predictions ({len(found)} shown)", fontsize=11)
        if len(found) == 0:
            subfigure.text(0.5, 0.5, f"no {kind} prediction in this batch", ha="center")
            continue
        for panel, (task, column) in zip(subfigure.subfigures(1, count, wspace=0.08), found):
            axes = panel.subplots(1, N + 1)
            axes[0].imshow(images[task, -1, column].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
            axes[0].set_title("query", fontsize=9)
            for spine in axes[0].spines.values():
                spine.set_color("C1")
                spine.set_linewidth(2)
            for n in range(N):
                ax = axes[n + 1]
                ax.imshow(images[task, 0, n].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
                ax.set_title(f"class {n}", fontsize=9)
                color = "green" if n == true[task, column] else None
                color = "red" if n == guess[task, column] != true[task, column] else color
                for spine in ax.spines.values():
                    spine.set_color(color or "0.7")
                    spine.set_linewidth(3 if color else 1)
            for ax in axes:
                ax.set_xticks([])
                ax.set_yticks([])
            axes[0].set_xlabel(
                f"true {true[task, column]}, predicted {guess[task, column]}", fontsize=8
            )
    fig.suptitle(f"{title}\n(green frame: true class; red frame: wrong prediction)", fontsize=12)
    _save(fig, path)
    return fig


def _save(fig: plt.Figure, path: str | Path | None) -> None:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)


def plot_learning_curve_comparison(
    runs: Mapping[str, Sequence[Mapping[str, float]]],
    path: str | Path | None = None,
    title: str = "Meta-learning curves",
    chance: Mapping[str, float] | None = None,
) -> plt.Figure:
    """`plot_learning_curves` for several runs on shared axes, made readable for many runs:
    one legend beside the axes, and one labelled chance line per distinct chance level.

    Args: as `plot_learning_curves`; `chance` maps run labels to 1/N.
    """
    fig = plot_learning_curves(runs, path=None, title=title)
    loss_ax, acc_ax = fig.axes[:2]
    loss_ax.get_legend().remove()
    for value in sorted(set((chance or {}).values())):
        acc_ax.axhline(100 * value, color="0.35", linestyle=":", linewidth=1)
        acc_ax.annotate(
            f"chance, N={round(1 / value)}",
            (0, 100 * value),
            xycoords=("axes fraction", "data"),
            xytext=(3, 2),
            textcoords="offset points",
            fontsize=8,
            color="0.35",
        )
    acc_ax.legend(title="run", fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.set_size_inches(12.5, 4.2)
    fig.tight_layout()
    _save(fig, path)
    return fig
