"""docs/CONTRACT.md against the code: the names, signatures, shapes and numbers it states must
be those of the stubs, the data pipeline and the grader, so that the contract cannot go stale.
"""

from __future__ import annotations

import ast
import re

import pytest

from autograder.checks.hidden.thresholds import CHECKS as ACCURACY_CHECKS
from autograder.identity import EPISODE_CLASSES, EPISODE_SHOTS
from data import EXPECTED
from data.splits import DEFAULT_SIZES
from publish import hints

from .conftest import REPO

CONTRACT = (REPO / "docs" / "CONTRACT.md").read_text()
# A shape such as `[K+1, N, 784]` or `[B, (K+1)*N, 784+N]`; not an index such as `images[K]`.
SHAPE = re.compile(r"(?<![\w\]])\[[A-Z0-9+*()]+(?:, [A-Z0-9+*()]+)+\]")


def section(title: str) -> str:
    """The text of the contract's `### <title>` section."""
    match = re.search(
        rf"^### `{re.escape(title)}`\n(.*?)(?=^##)", CONTRACT, flags=re.MULTILINE | re.DOTALL
    )
    assert match, f"docs/CONTRACT.md has no section ### `{title}`"
    return match.group(1)


def signatures(source: str) -> dict[str, str]:
    """`Class.method` -> its signature as source text, for every method of every class."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    returns = ast.unparse(item.returns) if item.returns else ""
                    found[f"{node.name}.{item.name}"] = f"({ast.unparse(item.args)}) -> {returns}"
            # The base class by its name: `torch.nn.Module` in the contract is `nn.Module`.
            found[node.name] = ", ".join(ast.unparse(b).split(".")[-1] for b in node.bases)
    return found


def docstrings(source: str, names: set[str] | None = None) -> str:
    """The docstrings of `source` (of the functions `names` only, when given), joined; with
    `names`, their hint sections (steps, outline) are left out: what stays is the contract."""
    texts = []
    for node in ast.walk(ast.parse(source)):
        documented = isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
        if documented and (
            names is None or isinstance(node, ast.FunctionDef) and node.name in names
        ):
            texts.append(ast.get_docstring(node) or "")
    text = "\n".join(texts)
    if names is not None:
        lines = text.split("\n")
        hinted = {i for _, start, end in hints.sections(text) for i in range(start, end)}
        text = "\n".join(line for i, line in enumerate(lines) if i not in hinted)
    return text


FILES = {
    "load_data.py": {"_sample"},
    "models.py": {"forward", "loss_function"},
}


@pytest.mark.parametrize("filename", list(FILES))
@pytest.mark.parametrize("folder", ["solutions", "assignment"])
def test_the_contracts_signatures_are_the_codes(folder, filename):
    """Does each class and method of the contract's code block have exactly the signature and
    base class it has in the file (the reference and the stub alike)?"""
    block = re.search(r"```python\n(.*?)```", section(filename), flags=re.DOTALL).group(1)
    stated = signatures(block)
    actual = signatures((REPO / folder / filename).read_text())
    assert stated, f"no class in the contract's {filename} block"
    for name, signature in stated.items():
        assert actual.get(name) == signature, f"{folder}/{filename}: {name}"


@pytest.mark.parametrize("filename", list(FILES))
def test_the_contracts_shapes_are_the_docstrings(filename):
    """Is every shape the contract states for a file in its docstrings, and every shape of the
    stubbed functions' arguments and results (their docstrings, hints aside) in the contract?"""
    source = (REPO / "solutions" / filename).read_text()
    stated = set(SHAPE.findall(section(filename)))
    documented = set(SHAPE.findall(docstrings(source, FILES[filename])))
    assert len(documented) >= 2, f"no shapes found in the docstrings of {filename}"
    assert stated <= set(SHAPE.findall(docstrings(source))), f"{filename}: not in the code"
    assert documented <= stated, f"the contract lacks {documented - stated} of {filename}"


def test_the_contracts_numbers_are_the_data_and_the_grader():
    """Are the archive counts, the default split sizes, the episode checks' (K, N) and the
    accuracy checks' (K, N) those of the code?"""
    for name, info in EXPECTED.items():
        counts = f"{info.alphabets} alphabets, {info.characters} characters, {info.images} images"
        expected = f"`{name}.zip` ({counts})"
        assert expected in " ".join(CONTRACT.split()), expected
    sizes = DEFAULT_SIZES
    assert (
        f"{sizes['train']} meta-train, {sizes['val']} meta-val and {sizes['test']} meta-test"
        in " ".join(CONTRACT.split())
    )
    assert f"(K={EPISODE_SHOTS} N={EPISODE_CLASSES})" in CONTRACT
    grid = " and ".join(f"({c.budget.num_shots}, {c.budget.num_classes})" for c in ACCURACY_CHECKS)
    assert f"(K, N) = {grid}" in " ".join(CONTRACT.split())


def test_nothing_cites_a_file_outside_the_repository():
    """Do the README, the contract, the handout and the data errors cite only files of the
    repository (no HOMEWORK_SPEC.md, no SOURCES.md outside data/, no ../shared)?"""
    texts = {
        path: path.read_text()
        for pattern in ("README.md", "docs/*.md", "handout/*", "data/*.py", "learners/*.py")
        for path in REPO.glob(pattern)
    }
    for path, text in texts.items():
        assert "HOMEWORK_SPEC" not in text, path
        assert "../shared" not in text and "shared/omniglot" not in text, path
        for match in re.finditer(r"(\S*)SOURCES\.md", text):
            assert match.group(1).endswith("data/"), f"{path}: cites {match.group(0)}"
