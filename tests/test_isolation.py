"""Grading at scale: `grade-all` (killed midway, then resumed) and the Gradescope package run
in a folder laid out like `/autograder`.

Every grading here runs only a few cheap checks (`--only CHEAP`), never the accuracy checks:
what is tested is the batch and packaging machinery around `python -m autograder grade`, whose
verdicts `tests/test_grader.py` covers.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from .conftest import omniglot_source

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "submissions"
CHEAP = "loss_equals or same_seed"  # 2 + 2 points, a few seconds per submission
SCHEMA_KEYS = {"score", "execution_time", "output", "tests"}
SUB_FILES = ("load_data.py", "models.py")

# A class of 10, graded with --only CHEAP: (folder, score out of 4, status). Measured with an
# uninterrupted `grade-all` run; each bug loses the check its corpus entry targets.
CLASS = {
    "reference": (REPO / "solutions", 4, "graded"),
    "stubs": (REPO / "assignment", 0, "graded"),
    "exits_in_sample": (CORPUS / "exits_in_sample", 2, "graded"),
    "loss_all_rows": (CORPUS / "loss_all_rows", 2, "graded"),
    "global_rng": (CORPUS / "global_rng", 2, "graded"),
    "raises_at_import": (CORPUS / "raises_at_import", 2, "graded"),
    "hangs_in_forward": (CORPUS / "hangs_in_forward", 4, "graded"),
    "numpy_loss": (CORPUS / "numpy_loss", 4, "graded"),
    "query_not_shuffled": (CORPUS / "query_not_shuffled", 4, "graded"),
    "no_code": (None, 0, "grader error"),  # a folder without load_data.py or models.py
}


def grader_env() -> dict[str, str]:
    env = dict(os.environ)
    source = omniglot_source()
    if source is not None:
        env["OMNIGLOT_SOURCE"] = str(source)
    return env


def autograder(*args: str) -> list[str]:
    return [sys.executable, "-m", "autograder", *args]


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("class")
    for name, (source, _, _) in CLASS.items():
        if source is None:
            (folder / name).mkdir()
            (folder / name / "notes.txt").write_text("I could not finish, sorry\n")
        else:
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def assert_results_schema(results: dict) -> None:
    assert set(results) == SCHEMA_KEYS
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def test_grade_all_killed_midway_resumes_without_regrading_and_completes(klass, tmp_path):
    out, results = tmp_path / "gradebook.csv", tmp_path / "gradebook_results"
    command = autograder("grade-all", str(klass), "--out", str(out), "--jobs", "2")
    command += ["--only", CHEAP, "--device", "cpu"]
    first = subprocess.Popen(
        command,
        cwd=REPO,
        env=grader_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while len(list(results.glob("*/results.json"))) < 3 and first.poll() is None:
        assert time.monotonic() < deadline, "grade-all graded nothing in 600 s"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # like a power cut: no cleanup runs
    first.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in results.glob("*/results.json")}
    assert 3 <= len(finished) < len(CLASS), "the kill came too late to test a resume"
    assert not out.exists()

    second = subprocess.run(
        command, cwd=REPO, env=grader_env(), capture_output=True, text=True, check=False
    )
    assert second.returncode == 0, second.stderr
    # Nothing finished was graded again, and every submission has a valid results.json.
    for name, mtime in finished.items():
        assert (results / name / "results.json").stat().st_mtime_ns == mtime
    for name in CLASS:
        assert_results_schema(json.loads((results / name / "results.json").read_text()))
    assert f"{len(finished)} from an earlier run" in second.stdout
    assert "grader error: no_code (score 0)" in second.stdout
    with open(out) as file:
        rows = {row["submission"]: row for row in csv.DictReader(file)}
    assert {name: (float(r["score"]), r["status"]) for name, r in rows.items()} == {
        name: (float(score), status) for name, (_, score, status) in CLASS.items()
    }
    assert all(float(r["max_score"]) == 4 for n, r in rows.items() if n != "no_code")


def test_grade_all_stops_a_grading_past_its_timeout_and_scores_it_zero(tmp_path):
    klass = tmp_path / "class"
    shutil.copytree(CORPUS / "hangs_in_forward", klass / "slow")
    out = tmp_path / "gradebook.csv"
    done = subprocess.run(  # its forward hangs for 15 s before the grader's own call timeout
        autograder("grade-all", str(klass), "--out", str(out), "--timeout", "4")
        + ["--only", "documented_shape and K1"],
        cwd=REPO,
        env=grader_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "gradebook_results" / "slow" / "results.json").read_text())
    assert_results_schema(results)
    assert results["score"] == 0
    assert "did not finish within 4 s" in results["output"]
    assert "slow,0,0,timeout," in out.read_text()

    # The results folder remembers its options: resuming it with others is refused.
    again = subprocess.run(
        autograder("grade-all", str(klass), "--out", str(out), "--only", "same_seed"),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert again.stderr.startswith("error: could not grade:") and "other options" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def gradescope_source(tmp_path_factory) -> Path:
    """The zip built by `python -m autograder gradescope`, unpacked as /autograder/source."""
    folder = tmp_path_factory.mktemp("gradescope")
    built = subprocess.run(
        autograder("gradescope", "--out", str(folder / "autograder.zip")),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    source = folder / "source"
    with zipfile.ZipFile(folder / "autograder.zip") as archive:
        names = archive.namelist()
        archive.extractall(source)
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(names)
    assert "autograder/checks/hidden/thresholds.py" in names
    assert not [n for n in names if n.startswith(("solutions/", "tests/", "cache/"))]
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & 0o111
        (source / script).chmod(0o755)
    assert "pip install" in (source / "setup.sh").read_text()
    return source


def run_autograder(
    source: Path, root: Path, submission: dict[str, str], python: str = sys.executable
) -> dict:
    """Lay out `root` like /autograder, upload `submission` (relative path -> text), run
    `run_autograder` there and return its results.json."""
    shutil.copytree(source, root / "source")
    for relative, text in submission.items():
        (root / "submission" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / relative).write_text(text)
    env = grader_env() | {
        "AUTOGRADER_ROOT": str(root),
        "AUTOGRADER_PYTHON": python,
        "AUTOGRADER_ARGS": f"--only '{CHEAP}'",
    }
    done = subprocess.run(
        [str(root / "source" / "run_autograder")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_the_gradescope_package_grades_the_reference_uploaded_in_a_folder(
    gradescope_source, tmp_path
):
    files = {f"hw3/{name}": (REPO / "solutions" / name).read_text() for name in SUB_FILES}
    results = run_autograder(gradescope_source, tmp_path / "autograder", files)
    assert_results_schema(results)
    assert results["score"] == 4 and len(results["tests"]) == 2
    assert "isolation:" in results["output"]


def test_the_gradescope_package_writes_results_for_a_broken_submission(gradescope_source, tmp_path):
    broken = {"models.py": "import os\nos._exit(0)\n", "load_data.py": "raise SystemExit(0)\n"}
    results = run_autograder(gradescope_source, tmp_path / "autograder", broken)
    assert_results_schema(results)
    assert results["score"] == 0
    assert all(t["status"] == "failed" for t in results["tests"])
    # No usable Python at all: run_autograder still writes a results.json, score 0.
    results = run_autograder(gradescope_source, tmp_path / "bare", broken, python="/nonexistent")
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"].startswith("NOT GRADED (grader error)")
