"""Grading where instructors grade: a hard deadline, fail-fast on stuck or slow code, real
memory limits, fail-closed without the sandbox, `doctor`, and the options declared once.

The child-level tests drive a `ChildSession` directly (a few seconds each); the command-level
ones run `python -m autograder` on cheap check subsets. None asserts a wall-clock time: each
asserts which verdict a check got and why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from autograder import cgroup, options, runner, sandbox
from autograder.runner import ChildError, ChildSession
from kit.step import Recipe

from .conftest import omniglot_source

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "submissions"
REFERENCE_MODELS = (REPO / "solutions" / "models.py").read_text()


def grader_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    source = omniglot_source()
    if source is not None:
        env["OMNIGLOT_SOURCE"] = str(source)
    return env | extra


def autograder(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        cwd=REPO,
        env=grader_env(**env),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def submission(folder: Path, models: str) -> Path:
    """A submission folder: the reference's load_data.py and the given models.py."""
    folder.mkdir(parents=True)
    shutil.copyfile(REPO / "solutions" / "load_data.py", folder / "load_data.py")
    (folder / "models.py").write_text(models)
    return folder


def slow_forward(seconds: float) -> str:
    """The reference's models.py with a sleep at the start of every forward."""
    text = REFERENCE_MODELS.replace("import torch\n", "import time\nimport torch\n", 1)
    head = "    def forward(self, images: Tensor, labels: Tensor) -> Tensor:\n"
    assert head in text, "the reference's forward signature changed: update this helper"
    return text.replace(head, head + f"        time.sleep({seconds})\n", 1)


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """Each test starts with a grader state of its own (no deadline, nothing stuck)."""
    monkeypatch.setattr(runner, "STATE", runner.GradingState())


# -- fail fast -------------------------------------------------------------------------------


def test_an_import_that_never_returns_costs_one_timeout_for_the_whole_grading(tmp_path):
    folder = submission(tmp_path / "stuck", "import time\ntime.sleep(10**6)\n")
    first = ChildSession(folder, timeout_scale=1.0)
    with first, pytest.raises(ChildError, match="importing models.py did not finish within 20 s"):
        first.call("forward", "MANN.forward", timeout=20, N=2, K=1, seed=0, pairs=0)
    # Every later call that needs models.py, in any session (the accuracy checks make their
    # own), fails at once without starting a child; load_data.py still runs.
    later = ChildSession(folder)
    with later:
        for op in ("loss", "train"):
            with pytest.raises(ChildError, match="^not run: importing models.py"):
                later.call(op, "MANN", timeout=600, N=2, K=1, seed=0)
        assert later.process is None
        images = np.random.default_rng(0).random((6, 4, 784), dtype=np.float32)  # [C, D, 784]
        reply = later.call(
            "sample", "DataGenerator._sample", 60, {"images": images}, N=2, K=1, seeds=[0], count=1
        )
        assert reply.arrays["images"].shape == (1, 1, 2, 2, 784)


def test_after_a_forward_timed_out_later_forwards_and_trainings_are_skipped(tmp_path):
    session = ChildSession(CORPUS / "hangs_in_forward", timeout_scale=1.0)
    with session, pytest.raises(ChildError, match="did not finish within 15 s"):
        arrays = {"images0": np.zeros((1, 2, 2, 784), np.float32)}
        arrays["labels0"] = np.tile(np.eye(2, dtype=np.float32), (1, 2, 1, 1))  # [B, K+1, N, N]
        session.call("forward", "MANN.forward", 15, arrays, N=2, K=1, seed=0, pairs=1)
    with session, pytest.raises(ChildError, match="^not run: an earlier check found that MANN"):
        session.call("forward", "MANN.forward", 15, arrays, N=2, K=1, seed=0, pairs=1)
    trainer = ChildSession(CORPUS / "hangs_in_forward")
    with trainer, pytest.raises(ChildError, match="^not trained.*fix forward first"):
        trainer.call("train", "training your MANN", timeout=660, N=2, K=1, steps=4000)
    assert trainer.process is None  # refused before any child started


def test_a_training_far_slower_than_its_allowance_is_stopped_after_its_first_steps(tmp_path):
    folder = submission(tmp_path / "slow", slow_forward(0.5))
    images = tmp_path / "train_images.npy"
    np.save(images, np.zeros((10, 20, 784), np.float32))
    steps, batch = 2000, 4
    index = np.zeros((steps, batch, 2, 2), np.int32)
    labels = np.tile(np.eye(2, dtype=np.float32), (steps, batch, 2, 1, 1))  # [S, B, K+1, N, N]
    session = ChildSession(folder, timeout_scale=0.25, shared_arrays={"train_images": images})
    timeout = runner.STARTUP_SECONDS + 0.15 * steps  # what the accuracy checks allow: 360 s
    with session, pytest.raises(ChildError, match=r"was stopped: it had run \d+ training steps"):
        session.call(
            "train",
            "training your MANN",
            timeout=timeout,
            arrays={"index": index, "labels": labels},
            N=2,
            K=1,
            hidden=16,
            seed=0,
            recipe=asdict(Recipe()),
            total_steps=steps,
            steps=steps,
            batch_size=batch,
            sampler="grader",
        )


# -- the deadline ----------------------------------------------------------------------------


def test_the_deadline_stops_a_slow_training_and_keeps_what_was_graded(tmp_path):
    # 0.2 s a step, half the per-step allowance (not stopped by fail-fast), but even the
    # earliest stop of a check (500 steps) then needs 100 s: none can finish by the deadline.
    folder = submission(tmp_path / "slow_trainer", slow_forward(0.2))
    out = tmp_path / "results.json"
    done = autograder(
        "grade",
        str(folder),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--only",
        "same_seed or accuracy",  # trainings one at a time: some still queued at the deadline
        "--jobs",
        "1",
        "--accuracy-attempts",
        "1",
        "--deadline",
        "45",
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    verdicts = [(t["name"].split(" [")[0], t["status"], t["output"]) for t in results["tests"]]
    assert ("the same seed gives the same tasks", "passed", "") in verdicts
    stopped = [v for v in verdicts if v[0] == "the trained mann reaches the accuracy threshold"]
    assert len(stopped) >= 2
    for _, status, message in stopped:
        assert (status, message) == (
            "failed",
            "not graded: the grading deadline of 45 s was reached",
        )
    assert results["score"] == 2
    assert "deadline 45 s" in results["output"]


# -- memory ----------------------------------------------------------------------------------


def test_a_child_over_its_memory_limit_is_named_memory_limit_exceeded(tmp_path, monkeypatch):
    probe = cgroup.ProcessCap.create(memory_bytes=256 << 20)
    if probe is None or probe.memory is None:
        if probe is not None:
            probe.remove()
        pytest.skip("no memory cgroup can be made here (see `python -m autograder doctor`)")
    probe.remove()
    monkeypatch.setattr(sandbox, "child_memory_bytes", lambda children: 400 << 20)
    hog = "chunks = [bytearray(50 << 20) for _ in range(40)]  # 2 GB, written\n"
    folder = submission(tmp_path / "hog", hog)
    session = ChildSession(folder)
    with session, pytest.raises(ChildError, match="^memory limit exceeded: .* its 400 MiB"):
        session.call("forward", "MANN.forward", timeout=120, N=2, K=1, seed=0, pairs=0)


def test_jobs_are_sized_from_the_memory_limit(monkeypatch):
    from autograder import batch, plugin

    monkeypatch.setattr(cgroup, "cpu_limit", lambda: 2.0)
    monkeypatch.setattr(cgroup, "memory_limit", lambda: 768 << 20)
    assert plugin.auto_jobs("cpu") == 1 and batch.auto_submissions_at_once() == 1
    monkeypatch.setattr(cgroup, "memory_limit", lambda: 8 << 30)
    assert plugin.auto_jobs("cpu") == 2 and batch.auto_submissions_at_once() == 2
    monkeypatch.setattr(cgroup, "cpu_limit", lambda: 0.5)
    assert plugin.auto_jobs("cpu") == 1 and batch.auto_submissions_at_once() == 1


# -- fail closed, doctor ---------------------------------------------------------------------


def test_grade_all_and_gradescope_refuse_to_grade_without_the_sandbox(tmp_path):
    (tmp_path / "empty").mkdir()  # a PATH without bwrap: a machine without bubblewrap
    klass = tmp_path / "class"
    shutil.copytree(REPO / "solutions", klass / "alice", ignore=shutil.ignore_patterns("__py*"))
    out = tmp_path / "gradebook.csv"
    refused = autograder(
        "grade-all", str(klass), "--out", str(out), "--only", "same_seed",
        PATH=str(tmp_path / "empty"),
    )  # fmt: skip
    assert refused.returncode == 1
    assert "--allow-unsandboxed" in refused.stderr and "bubblewrap" in refused.stderr
    assert not list(tmp_path.glob("gradebook_results/*/results.json")) and not out.exists()

    root = tmp_path / "autograder"
    shutil.copytree(REPO / "solutions", root / "submission", ignore=shutil.ignore_patterns("__py*"))
    done = subprocess.run(
        [sys.executable, "-m", "autograder.gradescope", "--root", str(root)],
        cwd=REPO,
        env=grader_env(PATH=str(tmp_path / "empty")),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "--allow-unsandboxed" in done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["tests"] == [] and "bwrap) is not on the PATH" in results["output"]

    # A student grading their own folder needs no sandbox; an instructor who says so is obeyed.
    own = autograder(
        "grade", str(klass / "alice"), "--out", str(tmp_path / "own.json"),
        "--only", "same_seed", "--device", "cpu", PATH=str(tmp_path / "empty"),
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    allowed = autograder(
        "grade-all", str(klass), "--out", str(out), "--only", "same_seed", "--device", "cpu",
        "--allow-unsandboxed", PATH=str(tmp_path / "empty"),
    )  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert "WITHOUT the sandbox" in allowed.stderr
    header, row = out.read_text().splitlines()
    assert header.endswith(",the same seed gives the same tasks") and row.endswith(",2")


def test_doctor_reports_each_problem_with_its_fix():
    ready = autograder("doctor")
    names = ("sandbox", "pids cgroup", "memory cgroup", "cuda", "limits", "data cache")
    for name in names:
        assert any(line.split()[1:2] == name.split()[:1] for line in ready.stdout.splitlines())
    off = autograder("doctor", AUTOGRADER_SANDBOX="none")
    assert off.returncode == 1
    assert "FAIL  sandbox" in off.stdout and "fix: unset AUTOGRADER_SANDBOX" in off.stdout
    assert "not ready: sandbox" in off.stdout


# -- the options, declared once --------------------------------------------------------------


def test_every_command_declares_the_grading_options_from_one_place():
    from autograder.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse's own
    for name in ("grade", "grade-all"):
        flags = {flag for action in commands[name]._actions for flag in action.option_strings}
        assert {option.flag for option in options.OPTIONS} <= flags, name
        defaults = commands[name].parse_args(["x"])
        assert options.Grading.from_namespace(defaults) == options.Grading()
    grading = options.Grading(seed=3, jobs=1, public=True, deadline=60.0, only="loss")
    assert (
        options.Grading.from_namespace(commands["grade"].parse_args(["x", *grading.argv()]))
        == grading
    )
    assert "--only" not in grading.argv(plugin=True) and "--deadline" in grading.argv(plugin=True)


def test_the_results_module_imports_none_of_the_commands():
    code = (
        "import sys, autograder.results, autograder.batch, autograder.gradescope; "
        "print(sorted(m for m in sys.modules if m in ('autograder.cli',)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"  # batch and gradescope no longer import cli
