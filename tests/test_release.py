"""Tests of the student release: assignment/ is generated from solutions/ by `kit.release`.

The stubs must keep every signature and docstring (the numbered steps students follow), raise
NotImplementedError where the solution was, leak no solution line, and a test must fail when
assignment/ goes stale.
"""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kit import release
from kit.submission import SUBMISSION_FILES, load_submission

from .conftest import REPO

STUBBED = [("load_data", "DataGenerator", "_sample"), ("models", "MANN", "forward"),
           ("models", "MANN", "loss_function")]  # fmt: skip
KEPT = [("load_data", "DataGenerator", "__init__"), ("load_data", "DataGenerator", "__iter__"),
        ("models", "MANN", "__init__")]  # fmt: skip


@pytest.fixture(scope="module")
def solutions():
    return load_submission("solutions")


@pytest.fixture(scope="module")
def assignment():
    return load_submission("assignment")


def solution_lines(path: Path) -> list[str]:
    """The code lines between `### BEGIN SOLUTION` and `### END SOLUTION`, stripped."""
    lines, inside = [], False
    for line in path.read_text().splitlines():
        if "### BEGIN SOLUTION" in line:
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def numbered_steps(docstring: str) -> list[int]:
    return [int(match) for match in re.findall(r"^\s*(\d+)\.\s", docstring, flags=re.MULTILINE)]


def test_release_check_passes_on_the_committed_tree():
    """Is assignment/ what `python -m kit.release` generates from solutions/ right now?"""
    result = subprocess.run(
        [sys.executable, "-m", "kit.release", "--check"],
        cwd=REPO,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"assignment/ is stale:\n{result.stdout}{result.stderr}"


def test_the_stubs_raise_not_implemented_error(assignment):
    images = np.zeros((5, 20, 784), dtype=np.float32)
    generator = assignment.load_data.DataGenerator(images, 3, 2, seed=0)
    with pytest.raises(NotImplementedError):
        generator._sample()
    model = assignment.models.MANN(3, 2)
    batch = torch.zeros(1, 3, 3, 784), torch.zeros(1, 3, 3, 3)
    with pytest.raises(NotImplementedError):
        model(*batch)
    with pytest.raises(NotImplementedError):
        model.loss_function(torch.zeros(1, 3, 3, 3), batch[1])


@pytest.mark.parametrize(("module", "cls", "method"), STUBBED + KEPT)
def test_stubs_keep_the_signatures_and_docstrings(solutions, assignment, module, cls, method):
    reference = getattr(getattr(getattr(solutions, module), cls), method)
    stub = getattr(getattr(getattr(assignment, module), cls), method)
    assert inspect.signature(stub) == inspect.signature(reference)
    assert inspect.getdoc(stub) == inspect.getdoc(reference)


@pytest.mark.parametrize("module", ["load_data", "models"])
def test_module_and_class_docstrings_are_kept(solutions, assignment, module):
    assert getattr(assignment, module).__doc__ == getattr(solutions, module).__doc__
    cls = "DataGenerator" if module == "load_data" else "MANN"
    assert inspect.getdoc(getattr(getattr(assignment, module), cls)) == inspect.getdoc(
        getattr(getattr(solutions, module), cls)
    )


@pytest.mark.parametrize(("module", "cls", "method"), STUBBED)
def test_each_stub_has_steps_numbered_one_to_n(assignment, module, cls, method):
    """Does every stubbed function tell the student what to build, in steps 1, 2, ..., n?"""
    docstring = inspect.getdoc(getattr(getattr(getattr(assignment, module), cls), method))
    steps = numbered_steps(docstring)
    assert len(steps) >= 3 and steps == list(range(1, len(steps) + 1)), steps


@pytest.mark.parametrize("filename", SUBMISSION_FILES)
def test_no_solution_code_leaks_into_the_release(filename):
    released = (REPO / "assignment" / filename).read_text()
    assert "BEGIN SOLUTION" not in released and "END SOLUTION" not in released
    released_lines = {line.strip() for line in released.splitlines()}
    code = [line for line in solution_lines(REPO / "solutions" / filename) if len(line) > 3]
    assert len(code) >= 3, "no solution region found in solutions/"
    leaked = [line for line in code if line in released_lines]
    assert not leaked, f"solution lines in assignment/{filename}: {leaked}"


@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of solutions/ and assignment/ in a tmp dir, free to modify."""
    source, target = tmp_path / "solutions", tmp_path / "assignment"
    shutil.copytree(REPO / "solutions", source)
    shutil.copytree(REPO / "assignment", target)
    return source, target


def test_copies_of_the_committed_tree_are_not_stale(copies):
    assert release.stale_files(*copies) == {}


def test_a_changed_docstring_in_a_solution_makes_the_release_stale(copies):
    source, target = copies
    path = source / "models.py"
    path.write_text(path.read_text().replace("Steps:", "Steps (changed):", 1))
    stale = release.stale_files(source, target)
    assert list(stale) == ["models.py"] and "Steps (changed):" in stale["models.py"]


def test_a_changed_signature_in_a_solution_makes_the_release_stale(copies):
    source, target = copies
    path = source / "load_data.py"
    path.write_text(path.read_text().replace("seed: int | None = None", "seed: int = 0", 1))
    assert list(release.stale_files(source, target)) == ["load_data.py"]


def test_a_missing_release_file_is_stale(copies):
    source, target = copies
    (target / "load_data.py").unlink()
    assert list(release.stale_files(source, target)) == ["load_data.py"]


def test_a_change_inside_a_solution_region_changes_no_stub(copies):
    """Solution code is cleared, so editing it must not make the release stale."""
    source, target = copies
    path = source / "models.py"
    text = path.read_text()
    path.write_text(text.replace("return F.cross_entropy(", "return 1.0 * F.cross_entropy(", 1))
    assert path.read_text() != text
    assert release.stale_files(source, target) == {}


def test_check_exits_1_and_names_the_stale_file(copies, monkeypatch, capsys):
    source, target = copies
    path = source / "models.py"
    path.write_text(path.read_text().replace("Steps:", "Steps (changed):", 1))
    monkeypatch.setattr(release, "SOURCE", source)
    monkeypatch.setattr(release, "RELEASE", target)
    assert release.main(["--check"]) == 1
    captured = capsys.readouterr()
    assert "models.py" in captured.err and "python -m kit.release" in captured.err
    assert captured.err.count("\n") == 1, "the error must be one line"
    added = [line for line in captured.out.splitlines() if line.startswith("+ ")]
    assert any("Steps (changed):" in line for line in added), "the diff must show the change"


def test_regenerating_brings_a_stale_release_up_to_date(copies, monkeypatch):
    source, target = copies
    path = source / "models.py"
    path.write_text(path.read_text().replace("Steps:", "Steps (changed):", 1))
    monkeypatch.setattr(release, "SOURCE", source)
    monkeypatch.setattr(release, "RELEASE", target)
    assert release.main([]) == 0
    assert release.stale_files(source, target) == {}
    assert "Steps (changed):" in (target / "models.py").read_text()
