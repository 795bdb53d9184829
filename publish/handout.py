"""The handout: the student package's `README.md`, `SUBMIT.md` and `requirements.txt`.

Written into `handout/` (the repository's reviewable copy) from the templates in
`publish/templates/`, with two generated parts, so that they cannot go stale:

- `{{points}}`: the points table, from the grader's `points` markers and the notebooks'
  nbgrader points (`publish.points`);
- `{{questions}}`: the written questions, from the rendered source notebooks.

`requirements.txt` lists what the student's tools need, with the versions of the
repository's `requirements.txt`, and installs the CPU build of PyTorch by default.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import nbformat

from kit.submission import REPO_ROOT
from publish.points import CHECKS, Cell, Check, grader_checks, module_summary, notebook_cells

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The packages the student's tools import (data, trainer, plots, checks, notebooks), in the
# order requirements.txt lists them; their versions come from the repository's requirements.
STUDENT_REQUIREMENTS = ("torch", "numpy", "pillow", "matplotlib", "tqdm", "pytest", "jupyterlab")
CPU_TORCH = """\
# The CPU build of PyTorch by default: small, and all this homework needs. With an NVIDIA GPU
# on Linux, delete the --extra-index-url line to get PyPI's CUDA build, or install the build
# for your machine from https://pytorch.org/get-started/locally/ before the rest.
--extra-index-url https://download.pytorch.org/whl/cpu
"""
QUESTION = re.compile(
    r"\*\*(?P<label>[^*]+?) \((?P<worth>\d+ points?)\)\.\*\*\s+(?P<prompt>.*)", re.DOTALL
)


def points_table(checks: list[Check], cells: list[Cell], checks_folder: Path = CHECKS) -> str:
    """The markdown table of what each part is worth: the autograder's public and hidden
    checks (grouped by check file), then the notebooks' autograded tests and written answers."""
    rows = ["| part | what | points |", "| --- | --- | ---: |"]
    by_file: dict[str, list[Check]] = defaultdict(list)
    for check in checks:
        by_file[check.file].append(check)
    parts = {
        "public": "public check (you run it: `python -m check`)",
        "hidden": "hidden check (at grading)",
    }
    for folder, part in parts.items():
        for file in sorted(name for name in by_file if name.startswith(f"{folder}/")):
            group = by_file[file]
            summary = module_summary(checks_folder / file)
            count = f"{len(group)} check{'s' if len(group) != 1 else ''}"
            rows.append(f"| {part} | {summary} ({count}) | {sum(c.points for c in group):g} |")
    code_total = sum(check.points for check in checks)
    public_total = sum(c.points for c in checks if c.file.startswith("public/"))
    rows.append(
        f"| **the autograder (your .py files)** | public {public_total:g} + hidden "
        f"{code_total - public_total:g} | **{code_total:g}** |"
    )
    notebooks = sorted({cell.notebook for cell in cells})
    for written, part in ((False, "notebook tests (nbgrader)"), (True, "written answers")):
        for name in notebooks:
            group = [c for c in cells if c.notebook == name and c.written == written]
            if group:
                kind = "question" if written else "test cell"
                count = f"{len(group)} {kind}{'s' if len(group) != 1 else ''}"
                rows.append(f"| {part} | `{name}`: {count} | {sum(c.points for c in group):g} |")
    tests = sum(c.points for c in cells if not c.written)
    written_total = sum(c.points for c in cells if c.written)
    rows.append(
        f"| **the notebooks** | tests {tests:g} + written {written_total:g} | "
        f"**{tests + written_total:g}** |"
    )
    return "\n".join(rows)


def written_questions(sources: dict[str, bytes]) -> str:
    """A numbered markdown list of the written questions of the source notebooks `sources`
    (file name -> bytes): the prompt before each answer cell, with its points."""
    items = []
    for name, content in sources.items():
        cells = nbformat.reads(content.decode(), 4).cells
        for index, cell in enumerate(cells):
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "markdown" and meta.get("grade") and meta.get("solution"):
                match = QUESTION.search(cells[index - 1].source)
                if match is None:
                    raise ValueError(f"{name}: no '**Question (n points).**' before {meta}")
                prompt = " ".join(match["prompt"].split())
                items.append(f"1. `{name}`, {match['worth']}: {prompt}")
    return "\n".join(items)


def requirements(repository_requirements: str) -> str:
    """The package's `requirements.txt`: the lines of `STUDENT_REQUIREMENTS`, taken from the
    repository's requirements (`name==x` or `name>=x,...`), after the CPU-torch index line."""
    specs = {}
    for line in repository_requirements.splitlines():
        requirement = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.-]+)\s*([<>=!~].*)?$", requirement)
        if match:
            specs[match[1].lower()] = requirement
    missing = [name for name in STUDENT_REQUIREMENTS if name not in specs]
    if missing:
        raise ValueError(f"requirements.txt does not list {', '.join(missing)}")
    return CPU_TORCH + "".join(f"{specs[name]}\n" for name in STUDENT_REQUIREMENTS)


def files(sources: dict[str, bytes], root: Path = REPO_ROOT) -> dict[str, bytes]:
    """`handout/` file name -> bytes, for the student source notebooks `sources`."""
    checks = root / "autograder" / "checks"
    table = points_table(grader_checks(checks), notebook_cells(sources), checks)
    readme = (TEMPLATES / "README.md").read_text().replace("{{points}}", table)
    readme = readme.replace("{{questions}}", written_questions(sources))
    return {
        "README.md": readme.encode(),
        "SUBMIT.md": (TEMPLATES / "SUBMIT.md").read_bytes(),
        "requirements.txt": requirements((root / "requirements.txt").read_text()).encode(),
    }
