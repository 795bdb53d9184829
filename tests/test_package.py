"""The student package used as a student would: unpacked from its zip, outside the repository.

Each command runs in a subprocess whose working folder is the unpacked package (in a folder
whose path holds a space), with the project's Python and no `PYTHONPATH`, so that nothing of
the repository is importable: only what the zip holds. Budgets are the smallest that run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from publish import package
from publish.notebooks import SOURCE_FOLDER

from .conftest import REPO, omniglot_source

pytestmark = pytest.mark.slow


def unpack(published: dict[str, bytes], parent: Path) -> Path:
    """The zip unpacked under `parent` (a path with a space); returns the package folder."""
    with zipfile.ZipFile(io.BytesIO(published[package.ZIP])) as archive:
        archive.extractall(parent)
    return parent / package.NAME


def student_env(tmp: Path) -> dict[str, str]:
    """The environment of a student's shell: no PYTHONPATH, the data where the tests keep it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "KIT_"))}
    env.update(MPLBACKEND="Agg", KIT_NOTEBOOK_BUDGET="tiny", KIT_FIGURES=str(tmp / "figures"))
    source = omniglot_source()
    if source is not None:
        env["OMNIGLOT_SOURCE"] = str(source)
    return env


def run(folder: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env=student_env(folder.parent),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def stubs(published, tmp_path_factory, omniglot) -> Path:
    """The package as a student gets it, unpacked in `.../student copy/`."""
    return unpack(published, tmp_path_factory.mktemp("stubs") / "student copy")


@pytest.fixture(scope="module")
def reference(published, tmp_path_factory, omniglot) -> Path:
    """The package with the reference `load_data.py` and `models.py` copied in, and the
    notebooks completed (the nbgrader sources: their solution cells filled in)."""
    folder = unpack(published, tmp_path_factory.mktemp("reference") / "student copy")
    for name in ("load_data.py", "models.py"):
        shutil.copyfile(REPO / "solutions" / name, folder / name)
    for name in ("episodes.ipynb", "learning_curves.ipynb"):
        (folder / name).write_bytes(published[f"{SOURCE_FOLDER}/{name}"])
    return folder


def test_nothing_of_the_repository_is_importable_from_the_package(stubs):
    """Is the package's `kit` the one imported, with no batched sampler, solutions or grader?"""
    probe = (
        "import importlib.util as u, kit; print(kit.__file__); "
        "print([m for m in ('kit.episodes', 'autograder', 'solutions', 'publish', 'learners') "
        "if u.find_spec(m)])"
    )
    done = run(stubs, "-c", probe)
    assert done.returncode == 0, done.stderr
    where, found = done.stdout.splitlines()
    assert Path(where).parent.parent == stubs and " " in where
    assert found == "[]"


def test_the_dry_run_on_the_stubs_fails_with_one_line_naming_the_function(stubs):
    done = run(stubs, "-m", "kit.train", "--dry-run", "--no-progress")
    assert done.returncode == 1
    error = done.stderr.strip().splitlines()
    assert len(error) == 1, done.stderr
    assert error[0].startswith("error: _sample() in ") and "load_data.py" in error[0]
    assert "not implemented yet" in error[0] and "--code solutions" not in error[0]
    assert "chance" in done.stdout  # the dry run says what to expect of its accuracy


def test_the_public_checks_on_the_stubs_give_0_points_one_line_per_function(stubs):
    done = run(stubs, "-m", "check")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout.splitlines()
    points = json.loads((stubs / "check" / "points.json").read_text())
    assert len(out) == 5, done.stdout  # header, three functions, closing line
    assert out[0].startswith(f"public checks of {stubs}") and "digest" not in out[0]
    todo = [line for line in out if line.lstrip().startswith("TODO")]
    functions = ["_sample() in load_data.py", "forward() in models.py"]
    functions.append("loss_function() in models.py")
    assert [next(f for f in functions if f in line) for line in todo] == functions
    assert out[-1].startswith(f"public checks: 0 / {points['public']:g} points")
    assert f"{points['hidden']:g} hidden points remain to be graded" in out[-1]


def test_the_public_checks_on_the_reference_give_every_public_point(reference):
    done = run(reference, "-m", "check", "-v")
    assert done.returncode == 0, done.stdout + done.stderr
    points = json.loads((reference / "check" / "points.json").read_text())
    total = f"{points['public']:g}"
    assert f"public checks: {total} / {total} points" in done.stdout
    assert "data digests" in done.stdout and "isolation:" in done.stdout  # -v only
    assert "  FAIL " not in done.stdout and "[..." not in done.stdout


def test_a_check_failure_shows_its_full_message(reference):
    """Does a bug get its whole message (no cut), and does the run exit non-zero?"""
    buggy = REPO / "tests" / "submissions" / "query_not_shuffled"
    done = run(reference, "-m", "check", str(buggy), "-k", "shuffled")
    assert done.returncode == 1, done.stdout + done.stderr
    text = " ".join(done.stdout.split())
    assert "FAIL 0/3 the query row is shuffled uniformly" in text
    assert "order = self.rng.permutation(N)" in text  # the end of the message is there


@pytest.mark.parametrize("name", ["episodes.ipynb", "learning_curves.ipynb"])
def test_a_completed_notebook_runs_in_the_package_with_the_tiny_budget(reference, name):
    script = (
        "import sys, nbformat; from nbclient import NotebookClient; "
        f"nb = nbformat.read({name!r}, 4); "
        "NotebookClient(nb, timeout=600, resources={'metadata': {'path': '.'}}).execute(); "
        "print('ran', len(nb.cells), 'cells')"
    )
    done = run(reference, "-c", script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ran" in done.stdout


def test_the_dry_run_on_the_reference_trains_and_writes_its_run(reference):
    done = run(reference, "-m", "kit.train", "--dry-run", "--no-progress", "--batch-size", "16")
    assert done.returncode == 0, done.stderr
    assert "meta-test accuracy" in done.stdout and "chance" in done.stdout
    config = json.loads((reference / "runs" / "K1N2" / "summary.json").read_text())["config"]
    assert Path(config["code"]) == reference  # the package folder is the default code
    assert (reference / "runs" / "K1N2" / "learning_curve.png").is_file()
