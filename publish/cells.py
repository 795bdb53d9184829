"""The building blocks of the kit's notebooks: nbgrader cells, the setup cell, shared text.

nbgrader reads a cell's metadata (`"schema_version": 3`) to know what it is: a solution the
student completes (`solution`), an autograded test worth points (`tests`), a written answer
graded by hand (`question`), or a read-only cell (`code(..., locked=...)`). One module per
notebook in `publish/notebooks/` lists its cells with these helpers.
"""

from __future__ import annotations

import nbformat

from publish import hints

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def _cell(kind: str, source: str, grade_id: str | None, points: int | None, **flags):
    source = source.strip("\n")
    cell = (
        nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
    )
    if grade_id is not None:
        cell.metadata["nbgrader"] = {
            "grade": flags.get("grade", False),
            "grade_id": grade_id,
            "locked": flags.get("locked", False),
            "schema_version": 3,
            "solution": flags.get("solution", False),
            "task": False,
        }
        if points is not None:
            cell.metadata["nbgrader"]["points"] = points
    return cell


def md(source: str):
    """A markdown cell without nbgrader metadata."""
    return _cell("md", source, None, None)


def code(source: str, locked: str | None = None):
    """A code cell; `locked=<id>` makes it read-only (autograde restores its source)."""
    return _cell("code", source, locked, None, locked=locked is not None)


def solution(grade_id: str, source: str, level: str):
    """A code cell the student completes: `### BEGIN/END SOLUTION` regions become stubs, and
    its docstring keeps the hint section of `level` (see `publish.hints`)."""
    return _cell("code", hints.select(source, level), grade_id, None, solution=True)


def tests(grade_id: str, points: int, source: str):
    """An autograded test cell worth `points`; `### BEGIN/END HIDDEN TESTS` never reach students."""
    return _cell("code", source, grade_id, points, grade=True, locked=True)


def answer(grade_id: str, points: int, source: str):
    """A manually graded written answer; `source` (the model answer) becomes YOUR ANSWER HERE."""
    return _cell("md", source, grade_id, points, grade=True, solution=True)


def question(
    grade_id: str, points: int, label: str, prompt: str, model_answer: str, intro: str = ""
) -> list:
    """A written question: a markdown cell `**<label> (<points> points).** <prompt>` (after
    `intro`), then the answer cell, graded by hand, whose model answer students never see."""
    text = f"**{label} ({points} point{'s' if points != 1 else ''}).** {prompt.strip()}"
    if intro.strip():
        text = f"{intro.strip()}\n\n{text}"
    return [md(text), answer(grade_id, points, model_answer)]


def pick(level: str, *, steps: str, outline: str) -> str:
    """The text of hint level `level`: `steps` may name code, `outline` must not."""
    return {"steps": steps, "outline": outline}[hints.check_level(level)]


def notebook(cells: list, name: str):
    """The notebook of `cells` (nested lists are flattened), with stable cell ids."""
    cells = [c for item in cells for c in (item if isinstance(item, list) else [item])]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(nb.cells):  # stable ids, so that the files never drift
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.id = grade_id or f"{name}-{index}"
    nbformat.validate(nb)
    return nb


BUDGET_PARAMETER = """
# Parameters: BUDGET = "full" trains for the full budgets (slow on a CPU, the spec's accuracies).
BUDGET = "small"  # tiny | small | full; $KIT_NOTEBOOK_BUDGET wins when set (tests, autograde)
"""

SETUP = """
# Setup: makes the kit importable (it lives in the repository that holds this notebook).
import sys
from pathlib import Path

for folder in [Path.cwd(), *Path.cwd().parents]:
    if (folder / "kit" / "__init__.py").is_file():
        sys.path.insert(0, str(folder))
        break

{imports}

%matplotlib inline

{settings}
"""

# The settings lines of a setup cell: the code folder, and the training budget if it trains.
STUDENT_CODE = """
CODE = code_folder(".")  # your load_data.py and models.py, next to this notebook ($KIT_CODE wins)
"""
TRAINING_BUDGET = """
BUDGET, TRAIN_BUDGET = budget(BUDGET)  # TRAIN_BUDGET: steps, batch size, tasks per evaluation
print(f"budget: {BUDGET} {TRAIN_BUDGET}")
"""
PRINT_CODE = """
print(f"code: {CODE}")
"""

HOW_TO_WORK = """
**How to work.** Your code lives in `load_data.py` and `models.py`, next to this notebook; this
notebook imports them afresh each time you run it (*Kernel > Restart & Run All* after an edit).
Cells that say `YOUR CODE HERE` are yours to complete, and cells that say `YOUR ANSWER HERE`
take your written answers. The cells with `assert`s are tests that give points: run them to
check your work. More tests are hidden and run only when your submission is graded, so passing
the visible ones is necessary, not sufficient. Do not edit the read-only cells.
"""


def setup(settings: str, *imports: str):
    """The setup cell's source: `imports` (plus kit.notebook's) in ruff's order, then the
    `settings` lines."""
    # Every notebook finds its code and saves figures; only those that train need a budget.
    names = ("budget, " if "budget(" in settings else "") + "code_folder, figure_path"
    lines = sorted({*imports, f"from kit.notebook import {names}"})
    third_party = [line for line in lines if line.split()[1].split(".")[0] in ("numpy", "torch")]
    first_party = [line for line in lines if line not in third_party]
    block = "\n".join(third_party) + ("\n\n" if third_party else "") + "\n".join(first_party)
    settings = "\n".join(line for line in settings.splitlines() if line.strip())
    return SETUP.format(imports=block, settings=settings)
