"""Train the submission's MANN in the child and measure it on meta-test: the grader's side.

Letters: S training steps, B tasks per step, T meta-test tasks, K shots, N classes, C
characters, D drawings, 784 pixels.

Training runs in the child (the submission's forward and backward) with the kit's
`train_step`, on meta-train tasks that either the grader samples (`kit.episodes.sample_tasks`,
sent as indices into the meta-train images) or the submission's own DataGenerator draws. The
grader then samples T meta-test tasks itself, sends the child the images and the labels with
the query row ZEROED, and computes the accuracy of the returned predictions `[T, K+1, N, N]`
against the true labels, which never leave this process. The accuracy checks and
`autograder.calibrate` both go through `train_and_evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autograder.feedback import BUGS, fail
from autograder.runner import ChildSession
from kit.episodes import sample_tasks
from kit.train import query_accuracy

SECONDS_PER_STEP = 0.15  # timeout allowance: ~8x the reference's step (32 tasks) on a busy CPU


@dataclass(frozen=True)
class Budget:
    """How the grader trains: K, N, steps, batch size, Adam learning rate, hidden units."""

    num_shots: int
    num_classes: int
    steps: int
    batch_size: int = 128
    learning_rate: float = 1e-3
    hidden_dim: int = 128


def save_train_images(train_images: np.ndarray, folder: Path) -> Path:
    """The meta-train images `[C, D, 784]` as one read-only .npy the child may open."""
    path = Path(folder) / "train_images.npy"
    np.save(path, train_images, allow_pickle=False)
    path.chmod(0o444)
    return path


def grader_batches(budget: Budget, train_images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """S batches from the kit's sampler, as indices `[S, B, K+1, N]` into the meta-train images
    flattened to `[C*D, 784]`, and labels `[S, B, K+1, N, N]`.

    `sample_tasks` run on a table whose "image" is its own flat index gives exactly the tasks it
    would give on the images, 4 bytes per image instead of 3136.
    """
    C, D, _ = train_images.shape
    table = np.arange(C * D, dtype=np.float32).reshape(C, D, 1)  # [C, D, 1], exact below 2^24
    rng = np.random.default_rng([seed, budget.num_shots, budget.num_classes])
    index, labels = [], []
    for _ in range(budget.steps):
        flat, batch_labels = sample_tasks(
            table, budget.num_classes, budget.num_shots, budget.batch_size, rng
        )
        index.append(flat[..., 0].astype(np.int32))  # [B, K+1, N]
        labels.append(batch_labels)
    if not index:  # an untrained model (calibration's chance baseline)
        K, N, B = budget.num_shots, budget.num_classes, budget.batch_size
        return {
            "index": np.zeros((0, B, K + 1, N), np.int32),
            "labels": np.zeros((0, B, K + 1, N, N), np.float32),
        }
    return {"index": np.stack(index), "labels": np.stack(labels)}


def train_in_child(
    child: ChildSession,
    budget: Budget,
    train_images: np.ndarray,
    train_images_file: Path,
    sampler: str,
    seed: int,
) -> None:
    """Train a fresh, seeded MANN in the child; sampler is "grader" or "student"."""
    __tracebackhide__ = True
    K, N = budget.num_shots, budget.num_classes
    child.shared_arrays["train_images"] = train_images_file
    arrays = grader_batches(budget, train_images, seed) if sampler == "grader" else {}
    source = "the grader's tasks" if sampler == "grader" else "your DataGenerator"
    child.call(
        "train",
        f"training your MANN (K={K}, N={N}) on {source}",
        timeout=60 + SECONDS_PER_STEP * budget.steps,
        arrays=arrays,
        N=N,
        K=K,
        hidden=budget.hidden_dim,
        seed=seed,
        lr=budget.learning_rate,
        steps=budget.steps,
        batch_size=budget.batch_size,
        sampler=sampler,
    )


def meta_test_accuracy(
    child,
    test_images: np.ndarray,
    num_shots: int,
    num_classes: int,
    num_tasks: int,
    seed: int,
    what: str,
) -> float:
    """Query accuracy of the child's trained MANN on `num_tasks` tasks from `test_images`.

    Args:
        child: a `ChildSession` whose last `train` call left a trained model.
        test_images: float32 `[C, D, 784]`, the meta-test characters (grader side only).
        seed: seed of the tasks; the same seed gives the same tasks on every run.
        what: the submission code the call runs, for messages.
    """
    __tracebackhide__ = True
    K, N = num_shots, num_classes
    rng = np.random.default_rng([seed, K, N])
    images, labels = sample_tasks(test_images, N, K, num_tasks, rng)  # [T, K+1, N, 784], [.., N]
    hidden = labels.copy()
    hidden[:, K] = 0  # the child never sees the query labels
    reply = child.call("predict", what, timeout=120, arrays={"images": images, "labels": hidden})
    preds = reply.arrays["preds"]
    if preds.shape != labels.shape:
        fail(BUGS["forward_shape"], f"predictions {preds.shape}, expected {labels.shape}")
    if not np.issubdtype(preds.dtype, np.floating) or not np.isfinite(preds).all():
        fail(BUGS["forward_shape"], f"predictions of dtype {preds.dtype} or not finite")
    return query_accuracy(torch.from_numpy(preds), torch.from_numpy(labels)).mean().item()


def train_and_evaluate(
    child: ChildSession,
    budget: Budget,
    splits: dict,
    train_images_file: Path,
    sampler: str,
    seed: int,
    eval_tasks: int,
    eval_seed: int,
) -> float:
    """Train in the child (`train_in_child`), then return its meta-test query accuracy."""
    __tracebackhide__ = True
    K, N = budget.num_shots, budget.num_classes
    train_in_child(child, budget, splits["train"].images, train_images_file, sampler, seed)
    what = f"your trained MANN (K={K}, N={N})"
    return meta_test_accuracy(child, splits["test"].images, K, N, eval_tasks, eval_seed, what)
