"""Tests of the student stubs: assignment/*.py are generated from solutions/ by `publish.stubs`.

The stubs must keep every signature and docstring (the numbered steps students follow, or at
`--hints outline` the outline without code), raise NotImplementedError where the solution was,
leak no solution line, and the release must be stale when solutions/ changes.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import re
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from kit.submission import SUBMISSION_FILES, load_submission
from publish import hints
from publish import stubs as release

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


def without_section(docstring: str, header: str) -> str:
    """`docstring` (dedented) without its `header` section: the header line, the lines indented
    under it, and the blank line before it. What a stub keeps of the reference's docstring."""
    lines = docstring.split("\n")
    if header not in lines:
        return docstring
    start = end = lines.index(header)
    while end + 1 < len(lines) and (not lines[end + 1].strip() or lines[end + 1][0] == " "):
        end += 1
    while not lines[end].strip():
        end -= 1
    return "\n".join(lines[: start - 1] + lines[end + 1 :])


@pytest.mark.parametrize(("module", "cls", "method"), STUBBED + KEPT)
def test_stubs_keep_the_signatures_and_docstrings(solutions, assignment, module, cls, method):
    """Does every stub keep the reference's signature, and its docstring minus the outline?"""
    reference = getattr(getattr(getattr(solutions, module), cls), method)
    stub = getattr(getattr(getattr(assignment, module), cls), method)
    assert inspect.signature(stub) == inspect.signature(reference)
    assert inspect.getdoc(stub) == without_section(inspect.getdoc(reference), "Outline:")


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


# --------------------------------------------------------------------------------------------
# Hint levels: `--hints steps` (numbered steps with code) and `--hints outline` (no code)


def called_names(code: str) -> set[str]:
    """The names of every function or method called in `code` (`self.rng.choice(...)` ->
    `choice`)."""
    names = set()
    for node in ast.walk(ast.parse(textwrap.dedent(code))):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names - {""}


def code_names(source: str) -> set[str]:
    """Every name and attribute used in `source`'s code, docstrings excluded."""
    tree = ast.parse(source)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def code_hints(docstring: str, vocabulary: set[str]) -> list[str]:
    """The code hints in `docstring`: calls written as code (`` `f(x)` ``), and any use of a
    name of `vocabulary` as code (in backticks, called, or as an attribute)."""
    spans = re.findall(r"`([^`]*)`", docstring)
    found = [span for span in spans if re.search(r"\w\(", span)]
    for name in vocabulary:
        word = rf"\b{re.escape(name)}\b"
        found += [span for span in spans if re.search(word, span)]
        found += re.findall(rf"{word}\(|\.{re.escape(name)}\b", docstring)
    return found


def solution_vocabulary(source: str) -> set[str]:
    """What a code hint would name: the functions the solution calls that the stub's own code
    does not use, builtins excluded (`choice`, `permutation`, `zeros_like`, `cross_entropy`)."""
    called = set().union(*(called_names(region) for region in release.solution_regions(source)))
    return called - code_names(release.strip_solutions(source)) - set(dir(builtins))


@pytest.mark.parametrize("filename", SUBMISSION_FILES)
def test_outline_stubs_give_the_contract_without_code_hints(filename):
    """At `--hints outline`, does each stubbed function's docstring keep its outline and its
    shapes, and lose every numbered step and every code hint?"""
    source = (REPO / "solutions" / filename).read_text()
    vocabulary = solution_vocabulary(source)
    assert {"choice", "permutation"} <= vocabulary or {"zeros_like", "cat"} <= vocabulary
    outline = release.student_stub(source, filename, "outline")
    steps = release.student_stub(source, filename, "steps")
    assert "Outline:" in outline and "Steps:" not in outline
    assert "Steps:" in steps and "Outline:" not in steps
    stubbed = [method for module, _, method in STUBBED if f"{module}.py" == filename]
    for node in ast.walk(ast.parse(outline)):
        if isinstance(node, ast.FunctionDef) and node.name in stubbed:
            docstring = ast.get_docstring(node)
            assert "Returns:" in docstring and "K+1, N" in docstring, f"{node.name}: no shapes"
            assert numbered_steps(docstring) == [], f"{node.name}: numbered steps at outline"
            assert code_hints(docstring, vocabulary) == [], f"{node.name}: code hints at outline"
    hinted = [
        ast.get_docstring(node)
        for node in ast.walk(ast.parse(steps))
        if isinstance(node, ast.FunctionDef) and node.name in stubbed
    ]
    assert all(code_hints(doc, vocabulary) for doc in hinted), "the check would find nothing"


def test_code_hints_are_found_in_a_planted_hint():
    """Does the hint detector flag a call, a backticked API name and an attribute use?"""
    vocabulary = {"permutation", "zeros_like"}
    assert code_hints("Draw `order = self.rng.permutation(N)`.", vocabulary)
    assert code_hints("Use `zeros_like` for the query labels.", vocabulary)
    assert code_hints("Call torch.zeros_like on them.", vocabulary)
    assert not code_hints("Shuffle by one random permutation, `[K+1, N, 784]`.", vocabulary)


SECTIONS = '''def f():
    """Summary.

    Returns:
        `[N]`.

    Outline:
        - what, no code.
          continued.

    Steps:
        1. `code(x)`.
           more.
        2. last.
    """
'''


def test_a_hint_level_keeps_its_section_and_drops_the_other_with_its_blank_line():
    """Does `hints.select` keep exactly the chosen level's section, leaving no double blank?"""
    steps = hints.select(SECTIONS, "steps")
    outline = hints.select(SECTIONS, "outline")
    assert "Outline:" not in steps and "        2. last." in steps and "\n\n\n" not in steps
    assert "Steps:" not in outline and "code(x)" not in outline and "continued." in outline
    assert outline.endswith('          continued.\n    """\n')
    assert steps.replace("\n\n    Steps:", "", 1).count("Returns:") == 1
    with pytest.raises(ValueError, match="unknown hint level 'hard'"):
        hints.select(SECTIONS, "hard")
