"""Tests of the grader's segmented training (`autograder.evaluation.train_and_evaluate`):
early stop at the target, giving up at chance, divergence as its own outcome.

Letters: K shots, N classes, T tasks. A scripted child stands in for the submission where only
the grader's decisions are under test; one real child trains a submission whose loss turns NaN.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder import evaluation
from autograder.evaluation import Budget, save_train_images, train_and_evaluate
from autograder.runner import ChildSession

from .conftest import REPO


@dataclass
class Reply:
    result: dict
    arrays: dict


class ScriptedChild:
    """Trains nothing: counts steps, and diverges at `diverge_at` when given. Its accuracy on
    any tasks is `accuracy(step)` (see `scripted`)."""

    def __init__(self, accuracy, diverge_at: int | None = None) -> None:
        self.accuracy, self.diverge_at = accuracy, diverge_at
        self.step, self.calls = 0, []
        self.shared_arrays: dict = {}

    def call(self, op, what, timeout, arrays=None, **params):
        assert op == "train"
        self.calls.append((params, {k: v.shape for k, v in (arrays or {}).items()}))
        self.step = (self.step if params["resume"] else 0) + params["steps"]
        if self.diverge_at is not None and self.step >= self.diverge_at:
            message = f"training diverged at step {self.diverge_at}"
            return Reply({"steps": self.diverge_at - 1, "diverged": message}, {})
        return Reply({"steps": self.step}, {})


@pytest.fixture
def scripted(monkeypatch):
    """`accuracy_of` answers the scripted child's accuracy; records what each call sent."""
    sent = []

    def accuracy_of(child, tasks, labels, hidden, what, keep=None):
        sent.append((tasks is not None, keep, labels.shape[0]))
        return child.accuracy(child.step)

    monkeypatch.setattr(evaluation, "accuracy_of", accuracy_of)
    return sent


BUDGET = Budget(num_shots=1, num_classes=2, steps=1000, batch_size=4, segment=100)


@pytest.fixture(scope="module")
def train_file(splits, tmp_path_factory) -> Path:
    return save_train_images(splits["train"].images, tmp_path_factory.mktemp("train"))


def run(child, splits, train_file, **kwargs):
    return train_and_evaluate(
        child, BUDGET, splits, train_file, "grader", 0, 200, 0, val_tasks=100, **kwargs
    )


def test_a_learning_model_stops_as_soon_as_meta_val_reaches_the_target(
    splits, train_file, scripted
):
    child = ScriptedChild(lambda step: 0.5 + step / 1000)  # 0.9 at step 400
    outcome = run(child, splits, train_file, stop_at=0.89, give_up=300)
    assert outcome.stopped == "target" and outcome.steps == 400
    assert [step for step, _ in outcome.val] == [100, 200, 300, 400]
    assert [acc for _, acc in outcome.val] == pytest.approx([0.6, 0.7, 0.8, 0.9])
    assert outcome.accuracy == pytest.approx(0.9)  # meta-test, measured at the stop
    assert scripted[0] == (True, "stop", 100) and scripted[1] == (False, "stop", 100)
    assert scripted[-1] == (True, None, 200), "then the meta-test tasks"


def test_a_model_at_chance_stops_at_give_up(splits, train_file, scripted):
    child = ScriptedChild(lambda step: 0.5)
    outcome = run(child, splits, train_file, stop_at=0.9, give_up=300)
    assert outcome.stopped == "chance" and outcome.steps == 300 and outcome.accuracy == 0.5
    assert [step for step, _ in outcome.val] == [100, 200, 300]


def test_segments_resume_and_carry_their_slice_of_the_graders_batches(splits, train_file, scripted):
    child = ScriptedChild(lambda step: 0.5)
    run(child, splits, train_file, stop_at=0.9, give_up=250)
    assert [params["resume"] for params, _ in child.calls] == [False, True, True]
    assert all(p["total_steps"] == 1000 and p["recipe"]["clip_norm"] == 1.0 for p, _ in child.calls)
    assert [shapes["index"] for _, shapes in child.calls] == [(100, 4, 2, 2)] * 3


def test_a_diverged_training_is_its_own_outcome_without_a_score(splits, train_file, scripted):
    child = ScriptedChild(lambda step: 0.5, diverge_at=150)
    outcome = run(child, splits, train_file, stop_at=0.9, give_up=800)
    assert outcome.stopped == "diverged" and outcome.accuracy is None
    assert "step 150" in outcome.diverged and outcome.steps == 149


def test_without_stop_or_give_up_every_step_is_trained(splits, train_file, scripted):
    outcome = run(ScriptedChild(lambda step: 0.5), splits, train_file)
    assert outcome.stopped == "budget" and outcome.steps == 1000 and len(outcome.val) == 10


NAN_AT_THREE = """

_calls, _loss = [0], MANN.loss_function


def _nan_at_three(self, preds, labels):
    _calls[0] += 1
    return _loss(self, preds, labels) * (float("nan") if _calls[0] == 3 else 1)


MANN.loss_function = _nan_at_three
"""


@pytest.mark.parametrize("sampler", ["grader", "student"])
def test_a_real_child_reports_divergence_naming_the_step(splits, train_file, tmp_path, sampler):
    for name in ("load_data.py", "models.py"):
        (tmp_path / name).write_text((REPO / "solutions" / name).read_text())
    with open(tmp_path / "models.py", "a") as file:
        file.write(NAN_AT_THREE)
    budget = Budget(num_shots=1, num_classes=2, steps=6, batch_size=8, hidden_dim=16, segment=2)
    with ChildSession(tmp_path, device="cpu", threads=1) as child:
        outcome = train_and_evaluate(
            child, budget, splits, train_file, sampler, 0, 50, 0, stop_at=0.99, val_tasks=20
        )
    assert outcome.stopped == "diverged" and outcome.accuracy is None
    assert "diverged at step 3" in outcome.diverged and outcome.steps == 2
    assert [step for step, _ in outcome.val] == [2]


# The grader's own process: no torch, uint8 images


GRADER_SIDE = """
import sys, tempfile
from pathlib import Path
import numpy as np
from autograder import batch, cli, device, evaluation, gradescope, plugin, results, runner
from autograder.checks.hidden import test_accuracy
from autograder.checks.public import test_episodes, test_model
from data import load_splits
splits = load_splits("default", progress=False, raw=True)
evaluation.save_train_images(splits["train"].images, Path(tempfile.mkdtemp()))
tasks, labels, hidden = evaluation.query_tasks(splits["test"].images, 1, 2, 50, [0, 1, 2])
assert tasks.dtype == np.float32 and float(evaluation.query_accuracy(labels, labels).mean()) == 1
print(device.resolve_device("cpu"), "torch" in sys.modules)
"""


def test_the_graders_process_never_imports_torch(splits):
    """Do the grader's modules, its checks and its data path (raw split, the children's
    float32 file, query tasks, scoring) run without torch, which a 768 MB container cannot
    spare in the grader next to a training child?"""
    done = subprocess.run(
        [sys.executable, "-c", GRADER_SIDE], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cpu", "False"]


def test_the_childrens_file_and_the_query_tasks_are_the_float_splits_values(splits, tmp_path):
    """Are the float32 file written from the raw split and the tasks drawn from it exactly
    what the float split gives (one conversion, `data.as_pixels`)?"""
    from data import load_splits

    raw = load_splits("default", progress=False, raw=True)
    saved = np.load(save_train_images(raw["train"].images, tmp_path), mmap_mode="r")
    np.testing.assert_array_equal(saved, splits["train"].images)
    from_raw = evaluation.query_tasks(raw["test"].images, 2, 3, 20, [5, 2, 3])
    from_float = evaluation.query_tasks(splits["test"].images, 2, 3, 20, [5, 2, 3])
    for a, b in zip(from_raw, from_float):
        np.testing.assert_array_equal(a, b)
    assert from_raw[0].dtype == np.float32 and not from_raw[2][:, 2].any()  # query row hidden


def test_query_accuracy_agrees_for_numpy_and_torch():
    """Does the one `query_accuracy` score NumPy predictions (the grader's) exactly as torch
    ones (the trainer's)?"""
    from kit.accuracy import query_accuracy

    rng = np.random.default_rng(0)
    preds = rng.normal(size=(64, 3, 4, 4)).astype(np.float32)
    labels = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(64, 3, 4))]
    ours = query_accuracy(preds, labels)
    theirs = query_accuracy(torch.from_numpy(preds), torch.from_numpy(labels))
    assert ours.shape == (64,) and np.allclose(ours, theirs.numpy())
    expected = (preds[:, -1].argmax(-1) == labels[:, -1].argmax(-1)).mean(-1)
    np.testing.assert_allclose(ours, expected)
