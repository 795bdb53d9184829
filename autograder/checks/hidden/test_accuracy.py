"""Accuracy checks: the grader trains the submission's MANN and measures it on meta-test.

Letters: K shots, N classes. Two samplers feed the training: the grader's own tasks
(`kit.episodes.sample_tasks`) and the submission's DataGenerator; evaluation is always on
meta-test tasks that the grader makes, with the query labels hidden (`autograder.evaluation`).
A training stops early once a stop check on other meta-test tasks clears the threshold with a
margin, or once it is still at chance after the check's `give_up` steps; a NaN or infinite loss
is its own outcome, "diverged", with its own feedback.

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
from autograder.evaluation import Outcome, save_train_images, train_until_learned
from autograder.feedback import BUGS, fail
from autograder.plugin import Grading, keep_output
from autograder.runner import ChildSession

pytestmark = pytest.mark.visibility("after_published")
SAMPLERS = {"grader": "the grader's tasks", "student": "your DataGenerator"}


@pytest.fixture(scope="session")
def train_images_file(splits, tmp_path_factory) -> Path:
    return save_train_images(splits["train"].images, tmp_path_factory.mktemp("grader-data"))


DIVERGED = (
    "training diverged: the loss became NaN or infinite, so the model could not be scored; "
    "compute the loss with F.cross_entropy on the logits (no log of a softmax, no division), "
    "keep images and labels float32 and finite, and return the logits unscaled"
)


def attempts(
    grading: Grading, check: AccuracyCheck, sampler: str, splits, train_file: Path, tries: int
) -> tuple[list[Outcome], str]:
    """Up to `tries` fresh trainings (`train_until_learned`: a new model only after a plateau)
    of the check's budget in one child. Returns the outcomes and what the submission printed."""
    child = ChildSession(
        grading.submission,
        device=grading.device,
        threads=grading.threads,
        timeout_scale=grading.timeout_scale,
    )
    with child:
        outcomes = train_until_learned(
            child, check.budget, splits, train_file, sampler, grading.seed, tries, EVAL_TASKS,
            EVAL_SEED, stop_at=check.stop_at, give_up=check.give_up,
        )  # fmt: skip
    return outcomes, "\n".join(child.outputs)


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
        if future.done() and not future.cancelled() and future.exception() is None:
            keep_output(request.config, future.result()[1])


TEST_NAME = "test_the_trained_mann_reaches_the_accuracy_threshold"


@pytest.mark.points(5)
@pytest.mark.parametrize("sampler", list(SAMPLERS), ids=["graders-tasks", "own-sampler"])
@pytest.mark.parametrize("check", CHECKS, ids=[check_id(c) for c in CHECKS])
def test_the_trained_mann_reaches_the_accuracy_threshold(
    trainings, check: AccuracyCheck, sampler, record_property
):
    """Trained by the grader (at most its budget, stopping once it clears the threshold with a
    margin), does the MANN beat the meta-test threshold?"""
    outcomes, _ = trainings[(check_id(check), sampler)].result()
    N, budget = check.budget.num_classes, check.budget
    scored = [o.accuracy for o in outcomes if o.accuracy is not None]
    best = max(scored, default=None)
    runs = ", ".join(
        f"{o.stopped} after {o.steps} steps"
        + (f": {100 * o.accuracy:.1f}%" if o.accuracy is not None else "")
        for o in outcomes
    )
    observed = (
        f"{100 * best:.1f}% on {EVAL_TASKS} meta-test tasks" if best is not None else "no score"
    ) + (
        f" after at most {budget.steps} steps of {budget.batch_size} tasks from "
        f"{SAMPLERS[sampler]} (fresh models: {runs}), threshold {100 * check.threshold:.0f}%, "
        f"chance {100 / N:.0f}%"
    )
    record_property("output", f"accuracy {observed}")
    if best is not None and best >= check.threshold:
        return
    if best is None:
        fail(DIVERGED, f"{outcomes[-1].diverged}; {observed}")
    if best < 1 / N + CHANCE_MARGIN:
        fail(BUGS["accuracy_chance"], observed)
    fail(BUGS["accuracy_low"] if sampler == "grader" else BUGS["student_sampler"], observed)
