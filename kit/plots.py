"""Learning-curve figures shared by the training script and the notebooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; notebooks switch back to inline themselves
import matplotlib.pyplot as plt


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
