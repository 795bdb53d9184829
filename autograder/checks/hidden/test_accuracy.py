"""Accuracy checks: the grader trains the submission's MANN and measures it on meta-test.

Letters: K shots, N classes. Two samplers feed the training: the grader's own tasks
(`kit.episodes.sample_tasks`) and the submission's DataGenerator; evaluation is always on
meta-test tasks that the grader makes, with the query labels hidden (`autograder.evaluation`).

The trainings of all selected checks start together, `--jobs` at a time, each in its own child
process (one CPU thread each); every check then waits for its own and judges it.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder.checks.hidden.thresholds import (
    ATTEMPTS,
    CHANCE_MARGIN,
    CHECKS,
    EVAL_SEED,
    EVAL_TASKS,
    AccuracyCheck,
)
from autograder.evaluation import save_train_images, train_and_evaluate
from autograder.feedback import BUGS, fail
from autograder.plugin import Grading, keep_output
from autograder.runner import ChildSession

pytestmark = pytest.mark.visibility("after_published")
SAMPLERS = {"grader": "the grader's tasks", "student": "your DataGenerator"}


@pytest.fixture(scope="session")
def train_images_file(splits, tmp_path_factory) -> Path:
    return save_train_images(splits["train"].images, tmp_path_factory.mktemp("grader-data"))


def attempts(
    grading: Grading, check: AccuracyCheck, sampler: str, splits, train_file: Path, tries: int
) -> tuple[list[float], str]:
    """Meta-test accuracy of up to `tries` fresh trainings, stopping at the first that passes.

    Returns the accuracies and the excerpt of what the submission printed.
    """
    accuracies: list[float] = []
    child = ChildSession(
        grading.submission,
        device=grading.device,
        threads=grading.threads,
        timeout_scale=grading.timeout_scale,
    )
    with child:
        for attempt in range(tries):
            seed = grading.seed + attempt
            accuracies.append(
                train_and_evaluate(
                    child, check.budget, splits, train_file, sampler, seed, EVAL_TASKS, EVAL_SEED
                )
            )
            if accuracies[-1] >= check.threshold:
                break
    return accuracies, "\n".join(child.outputs)


def check_id(check: AccuracyCheck) -> str:
    return f"K{check.budget.num_shots}-N{check.budget.num_classes}"


@pytest.fixture(scope="session")
def trainings(request, grading, splits, train_images_file):
    """(check id, sampler) -> Future of `attempts(...)`, for every selected accuracy check."""
    selected = [
        (item.callspec.params["check"], item.callspec.params["sampler"])
        for item in request.session.items
        if getattr(item, "originalname", "") == TEST_NAME
    ]
    tries = request.config.getoption("--accuracy-attempts") or ATTEMPTS
    pool = ThreadPoolExecutor(max_workers=grading.jobs)
    futures: dict[tuple[str, str], Future] = {
        (check_id(check), sampler): pool.submit(
            attempts, grading, check, sampler, splits, train_images_file, tries
        )
        for check, sampler in selected
    }
    yield futures
    pool.shutdown(cancel_futures=True)
    for future in futures.values():
        if future.done() and future.exception() is None:
            keep_output(request.config, future.result()[1])


TEST_NAME = "test_the_trained_mann_reaches_the_accuracy_threshold"


@pytest.mark.points(5)
@pytest.mark.parametrize("sampler", list(SAMPLERS), ids=["graders-tasks", "own-sampler"])
@pytest.mark.parametrize("check", CHECKS, ids=[check_id(c) for c in CHECKS])
def test_the_trained_mann_reaches_the_accuracy_threshold(
    trainings, check: AccuracyCheck, sampler, record_property
):
    """Trained by the grader for a fixed budget, does the MANN beat the meta-test threshold?"""
    accuracies, _ = trainings[(check_id(check), sampler)].result()
    best, N = max(accuracies), check.budget.num_classes
    runs = ", ".join(f"{100 * a:.1f}%" for a in accuracies)
    observed = (
        f"{100 * best:.1f}% on {EVAL_TASKS} meta-test tasks after {check.budget.steps} steps of "
        f"{check.budget.batch_size} tasks from {SAMPLERS[sampler]} (fresh models: {runs}), "
        f"threshold {100 * check.threshold:.0f}%, chance {100 / N:.0f}%"
    )
    record_property("output", f"accuracy {observed}")
    if best >= check.threshold:
        return
    if best < 1 / N + CHANCE_MARGIN:
        fail(BUGS["accuracy_chance"], observed)
    fail(BUGS["accuracy_low"] if sampler == "grader" else BUGS["student_sampler"], observed)
