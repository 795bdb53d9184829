"""Accuracy checks: the grader trains the submission's MANN and measures it on meta-test.

Letters: K shots, N classes. Two samplers feed the training: the grader's own tasks
(`kit.episodes.sample_tasks`) and the submission's DataGenerator; evaluation is always on
meta-test tasks that the grader makes, with the query labels hidden (`autograder.evaluation`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder.checks.hidden.thresholds import (
    CHANCE_MARGIN,
    CHECKS,
    EVAL_SEED,
    EVAL_TASKS,
    AccuracyCheck,
)
from autograder.evaluation import save_train_images, train_and_evaluate
from autograder.feedback import BUGS, fail

pytestmark = pytest.mark.visibility("after_published")


@pytest.fixture(scope="session")
def train_images_file(splits, tmp_path_factory) -> Path:
    return save_train_images(splits["train"].images, tmp_path_factory.mktemp("grader-data"))


@pytest.mark.points(5)
@pytest.mark.parametrize("sampler", ["grader", "student"], ids=["graders-tasks", "own-sampler"])
@pytest.mark.parametrize(
    "check",
    CHECKS,
    ids=[f"K{c.budget.num_shots}-N{c.budget.num_classes}" for c in CHECKS],
)
def test_the_trained_mann_reaches_the_accuracy_threshold(
    child, grading, splits, train_images_file, check: AccuracyCheck, sampler, record_property
):
    """Trained by the grader for a fixed budget, does the MANN beat the meta-test threshold?"""
    budget, N = check.budget, check.budget.num_classes
    accuracy = train_and_evaluate(
        child, budget, splits, train_images_file, sampler, grading.seed, EVAL_TASKS, EVAL_SEED
    )
    source = "the grader's tasks" if sampler == "grader" else "your DataGenerator"
    observed = (
        f"{100 * accuracy:.1f}% on {EVAL_TASKS} meta-test tasks after {budget.steps} steps on "
        f"{source}, threshold {100 * check.threshold:.0f}%, chance {100 / N:.0f}%"
    )
    record_property("output", f"accuracy {observed}")
    if accuracy >= check.threshold:
        return
    if accuracy < 1 / N + CHANCE_MARGIN:
        fail(BUGS["accuracy_chance"], observed)
    fail(BUGS["accuracy_low"] if sampler == "grader" else BUGS["student_sampler"], observed)
