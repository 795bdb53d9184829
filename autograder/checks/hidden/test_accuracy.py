"""Accuracy checks: the grader trains the submission's MANN and measures it on meta-test.

Letters: S training steps, B tasks per step, T meta-test tasks, K shots, N classes, C
characters, D drawings, 784 pixels.

Training runs in the child (the submission's forward and backward), with the kit's
`train_step`, on meta-train tasks that either the grader samples (`kit.episodes.sample_tasks`,
sent as indices into the meta-train images) or the submission's own DataGenerator draws. The
grader then sends T meta-test tasks of its own, with the query labels ZEROED, and computes the
accuracy of the returned predictions `[T, K+1, N, N]` against labels the child never sees.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.checks.hidden.thresholds import (
    BATCH_SIZE,
    BUDGETS,
    CHANCE_MARGIN,
    EVAL_SEED,
    EVAL_TASKS,
    HIDDEN_DIM,
    LEARNING_RATE,
    Budget,
)
from autograder.feedback import BUGS, fail
from kit.episodes import sample_tasks
from kit.train import query_accuracy

SECONDS_PER_STEP = 0.3  # timeout allowance: ~10x the reference's step on a busy 2-core CPU

pytestmark = pytest.mark.visibility("after_published")


@pytest.fixture(scope="session")
def train_images_file(splits, tmp_path_factory) -> Path:
    """The meta-train images `[C, D, 784]` as one read-only .npy the child may open."""
    path = tmp_path_factory.mktemp("grader-data") / "train_images.npy"
    np.save(path, splits["train"].images, allow_pickle=False)
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
            table, budget.num_classes, budget.num_shots, BATCH_SIZE, rng
        )
        index.append(flat[..., 0].astype(np.int32))  # [B, K+1, N]
        labels.append(batch_labels)
    return {"index": np.stack(index), "labels": np.stack(labels)}


def meta_test_accuracy(child, budget: Budget, test_images: np.ndarray, what: str) -> float:
    """Query accuracy of the child's trained MANN on T grader-made meta-test tasks."""
    __tracebackhide__ = True
    K, N = budget.num_shots, budget.num_classes
    rng = np.random.default_rng([EVAL_SEED, K, N])
    images, labels = sample_tasks(test_images, N, K, EVAL_TASKS, rng)
    hidden = labels.copy()
    hidden[:, K] = 0  # the child never sees the query labels
    reply = child.call("predict", what, timeout=120, arrays={"images": images, "labels": hidden})
    preds = reply.arrays["preds"]
    if preds.shape != labels.shape:
        fail(BUGS["forward_shape"], f"predictions {preds.shape}, expected {labels.shape}")
    if not np.issubdtype(preds.dtype, np.floating) or not np.isfinite(preds).all():
        fail(BUGS["forward_shape"], f"predictions of dtype {preds.dtype} or not finite")
    return query_accuracy(torch.from_numpy(preds), torch.from_numpy(labels)).mean().item()


@pytest.mark.points(5)
@pytest.mark.parametrize("sampler", ["grader", "student"], ids=["graders-tasks", "own-sampler"])
@pytest.mark.parametrize(
    "budget", BUDGETS, ids=[f"K{b.num_shots}-N{b.num_classes}" for b in BUDGETS]
)
def test_the_trained_mann_reaches_the_accuracy_threshold(
    child, grading, splits, train_images_file, budget, sampler, record_property
):
    """Trained by the grader for a fixed budget, does the MANN beat the meta-test threshold?"""
    K, N = budget.num_shots, budget.num_classes
    child.shared_arrays["train_images"] = train_images_file
    arrays = (
        grader_batches(budget, splits["train"].images, grading.seed) if sampler == "grader" else {}
    )
    source = "the grader's tasks" if sampler == "grader" else "your DataGenerator"
    what = f"training your MANN (K={K}, N={N}) on {source}"
    child.call(
        "train",
        what,
        timeout=60 + SECONDS_PER_STEP * budget.steps,
        arrays=arrays,
        N=N,
        K=K,
        hidden=HIDDEN_DIM,
        seed=grading.seed,
        lr=LEARNING_RATE,
        steps=budget.steps,
        batch_size=BATCH_SIZE,
        sampler=sampler,
    )
    accuracy = meta_test_accuracy(
        child, budget, splits["test"].images, f"your trained MANN (K={K}, N={N})"
    )
    observed = (
        f"{100 * accuracy:.1f}% on {EVAL_TASKS} meta-test tasks after {budget.steps} steps on "
        f"{source}, threshold {100 * budget.threshold:.0f}%, chance {100 / N:.0f}%"
    )
    record_property("output", f"accuracy {observed}")
    if accuracy >= budget.threshold:
        return
    if accuracy < 1 / N + CHANCE_MARGIN:
        fail(BUGS["accuracy_chance"], observed)
    fail(BUGS["accuracy_low"] if sampler == "grader" else BUGS["student_sampler"], observed)
