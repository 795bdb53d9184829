"""The secrets that must never reach students, and a scan of what would reach them.

A secret is a non-trivial line of:

- a solution region (`### BEGIN SOLUTION` ... `### END SOLUTION`) of `solutions/*.py`, except
  the lines that the public checks (shipped by design) hold too;
- a solution or hidden-test region, or a model answer, of the source notebooks, except the
  lines of the kit's own code (`kit/`, `data/`) whose API these solutions call;
- any file of the hidden checks (`autograder/checks/hidden/`: the accuracy checks, their
  thresholds and the calibration data), except imports and the lines that they share with the
  public checks (public by definition) or with the project's generic code, the grader's own
  modules (`autograder/*.py`), `kit/` and `data/` (such as `@dataclass(frozen=True)`).

A line that the student files show by design (a line of a stub or of a notebook outside its
solution and hidden regions) is not a secret, wherever else it appears.

Nor may any other working implementation of what the student writes reach them: `scan` also
flags the kit's batched sampler (a definition of `sample_tasks` or `TaskBatches`, or its
module `kit/episodes.py`) and any LSTM model outside the stub `models.py` (`nn.LSTM(`).

`scan` looks for each secret, as a whole line (surrounding spaces and a trailing comment
ignored), in every text file of a set of files, reading notebooks cell by cell; it also flags
a file whose name is that of a hidden-check file. A line is non-trivial when it is at least
`MIN_SOLUTION_LINE` (solutions, notebooks) or `MIN_HIDDEN_LINE` (hidden checks) characters
long.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

from kit.submission import REPO_ROOT, SUBMISSION_FILES
from publish.stubs import solution_regions

MIN_SOLUTION_LINE = 10  # `return runs` counts; `runs = {}` does not
MIN_HIDDEN_LINE = 20  # hidden-check files share short lines (`import pytest`) with everything
HIDDEN_CHECKS = Path("autograder/checks/hidden")
PUBLIC_CHECKS = Path("autograder/checks/public")
NOTEBOOK_REGION = re.compile(r"### BEGIN (?:HIDDEN TESTS|SOLUTION)\n(.*?)### END", re.DOTALL)
SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.DOTALL)
IMPORT = re.compile(r"^(?:import \S|from \S+ import )")  # imports name modules, not secrets
# Working implementations of the homework that the kit holds: name -> what it is.
IMPLEMENTATIONS = {
    re.compile(r"^\s*(?:def sample_tasks|class TaskBatches)\b", re.MULTILINE): (
        "the kit's batched sampler (kit.episodes.sample_tasks does what _sample asks)"
    ),
    re.compile(r"\bnn\.LSTM\(|\btorch\.nn\.LSTM\("): "an LSTM model outside the stub models.py",
}
IMPLEMENTATION_FILES = {"kit/episodes.py": "the kit's batched sampler module"}
STUB_MODEL = "models.py"  # the stub's __init__ builds the LSTMs by design; forward is the work


@dataclass(frozen=True)
class Secret:
    line: str  # normalised (see `normalise`)
    origin: str  # where it comes from, e.g. `solutions/models.py`


@dataclass(frozen=True)
class Hit:
    file: str  # the file that holds the secret
    secret: Secret

    def __str__(self) -> str:
        return f"{self.file}: {self.secret.line!r} (from {self.secret.origin})"


def normalise(line: str) -> str:
    """A line without surrounding spaces and without a trailing `  # comment`."""
    return line.split("  # ", 1)[0].strip()


def _lines(text: str, minimum: int) -> set[str]:
    return {line for line in map(normalise, text.splitlines()) if len(line) >= minimum}


def secrets(notebook_sources: dict[str, bytes], root: Path = REPO_ROOT) -> list[Secret]:
    """Every secret line, from `root`'s solutions and hidden checks and from the source
    notebooks `notebook_sources` (repository path -> bytes)."""
    found: dict[str, str] = {}

    def add(lines: set[str], origin: str) -> None:
        for line in sorted(lines):
            found.setdefault(line, origin)

    public_lines = set()
    for path in sorted((root / PUBLIC_CHECKS).rglob("*.py")):
        public_lines |= _lines(path.read_text(), MIN_SOLUTION_LINE)
    for name in SUBMISSION_FILES:
        origin = f"solutions/{name}"
        text = (root / origin).read_text()
        shown = _lines(SOLUTION_REGION.sub("", text), MIN_SOLUTION_LINE)  # the stub shows these
        shown |= public_lines  # and so do the public checks (`N = preds.shape[-1]`)
        for region in solution_regions(text):
            add(_lines(region, MIN_SOLUTION_LINE) - shown, origin)
    runtime = set()
    for path in sorted([*(root / "kit").rglob("*.py"), *(root / "data").rglob("*.py")]):
        runtime |= _lines(path.read_text(), MIN_SOLUTION_LINE)
    for origin, content in sorted(notebook_sources.items()):
        cells = nbformat.reads(content.decode(), 4).cells
        answers = {i for i, c in enumerate(cells) if c.cell_type == "markdown" and _is_solution(c)}
        # What the student notebook shows: every other line of every other cell, and the kit's
        # own code, whose API the notebook's solutions call (`config = TrainConfig(`).
        shown = set(runtime)
        for index, cell in enumerate(cells):
            if index not in answers:
                shown |= _lines(NOTEBOOK_REGION.sub("", cell.source), MIN_SOLUTION_LINE)
        for index, cell in enumerate(cells):
            if index in answers:
                add(_lines(cell.source, MIN_SOLUTION_LINE) - shown, f"{origin} (model answer)")
            for region in NOTEBOOK_REGION.findall(cell.source):
                add(_lines(region, MIN_SOLUTION_LINE) - shown, origin)
    public = set()
    for path in shared_code(root):
        public |= _lines(path.read_text(), MIN_HIDDEN_LINE)
    for path in hidden_files(root):
        lines = _lines(path.read_text(errors="replace"), MIN_HIDDEN_LINE) - public
        add({line for line in lines if not IMPORT.match(line)}, path.relative_to(root).as_posix())
    return [Secret(line, origin) for line, origin in found.items()]


def shared_code(root: Path = REPO_ROOT) -> list[Path]:
    """The code whose lines are not secrets even when a hidden check has them too: the public
    checks, the grader's own modules, `kit/` and `data/`."""
    folders = [root / PUBLIC_CHECKS, root / "kit", root / "data"]
    found = [path for folder in folders for path in sorted(folder.rglob("*.py"))]
    return found + sorted((root / "autograder").glob("*.py"))


def _is_solution(cell) -> bool:
    return bool(cell.metadata.get("nbgrader", {}).get("solution"))


def hidden_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every file of the hidden checks, bytecode excluded."""
    folder = root / HIDDEN_CHECKS
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def readable_lines(name: str, content: bytes) -> set[str]:
    """The normalised lines a reader of file `name` sees: a notebook's cell sources and text
    outputs, any other file's text (nothing for a binary file)."""
    try:
        text = content.decode()
    except UnicodeDecodeError:
        return set()
    if name.endswith(".ipynb"):
        notebook = nbformat.reads(text, 4)
        parts = [cell.source for cell in notebook.cells]
        for cell in notebook.cells:
            for output in cell.get("outputs", []):
                parts.append(str(output.get("text", "")))
                parts.extend(str(value) for value in output.get("data", {}).values())
        text = "\n".join(parts)
    return {normalise(line) for line in text.splitlines()}


def scan(files: dict[str, bytes], secret_lines: list[Secret], root: Path = REPO_ROOT) -> list[Hit]:
    """Every secret found in `files` (name -> bytes), and every file named like a hidden-check
    file, as a `Hit`."""
    hidden_names = {path.name for path in hidden_files(root)} - {"__init__.py"}
    hits = []
    for name, content in sorted(files.items()):
        if PurePosixPath(name).name in hidden_names:
            hits.append(Hit(name, Secret(PurePosixPath(name).name, "a hidden-check file name")))
        hits.extend(implementations(name, content))
        lines = readable_lines(name, content)
        hits.extend(Hit(name, secret) for secret in secret_lines if secret.line in lines)
    return hits


def implementations(name: str, content: bytes) -> list[Hit]:
    """A `Hit` for each working implementation of the homework (`IMPLEMENTATIONS`) in file
    `name` of a package (or of its zip, under one top folder)."""
    path = PurePosixPath(name)
    relative = [path.as_posix(), PurePosixPath(*path.parts[1:]).as_posix()]
    hits = [
        Hit(name, Secret(known, what))
        for known, what in IMPLEMENTATION_FILES.items()
        if known in relative
    ]
    if path.suffix not in (".py", ".ipynb"):
        return hits
    text = "\n".join(sorted(readable_lines(name, content)))
    for pattern, what in IMPLEMENTATIONS.items():
        if "LSTM" in what and STUB_MODEL in relative:
            continue
        found = pattern.search(text)
        if found:
            hits.append(Hit(name, Secret(found.group(0).strip(), what)))
    return hits


def zip_members(data: bytes) -> dict[str, bytes]:
    """Member name -> bytes of a zip archive's files."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {
            info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()
        }
