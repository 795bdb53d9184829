"""The notebooks: generated from notebooks/build.py, released by nbgrader without solutions or
hidden tests, run top to bottom against the solutions, and autograded by nbgrader.

Every notebook runs with the tiny budget (`KIT_NOTEBOOK_BUDGET=tiny`), so these tests check
that every cell runs and draws its figures, not how well the models learn.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kit import course
from tests.conftest import REPO, omniglot_source

NOTEBOOKS = REPO / "notebooks"
SOURCE = NOTEBOOKS / course.ASSIGNMENT_ID
STUDENT_NOTEBOOKS = ("episodes.ipynb", "learning_curves.ipynb")

# Notebook -> the figures it saves (and must also show inline as PNG outputs).
FIGURES = {
    SOURCE / "episodes.ipynb": ["episode_task.png", "episode_tasks.png"],
    SOURCE / "learning_curves.ipynb": ["learning_curves_grid.png", "learning_curves_hidden.png"],
    NOTEBOOKS / "demo.ipynb": [
        "demo_task.png",
        "demo_tasks.png",
        "demo_learning_curve.png",
        "demo_predictions.png",
    ],
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def nbgrader_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


@pytest.fixture
def notebook_env(monkeypatch, splits, tmp_path):
    """The environment the notebooks' kernels inherit: tiny budget, the kit importable from
    anywhere, figures into a temporary folder, the data from the tests' source."""
    monkeypatch.setenv("KIT_NOTEBOOK_BUDGET", "tiny")
    monkeypatch.setenv("KIT_FIGURES", str(tmp_path / "figures"))
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    monkeypatch.delenv("KIT_CODE", raising=False)
    if omniglot_source() is not None:
        monkeypatch.setenv("OMNIGLOT_SOURCE", str(omniglot_source()))
    return tmp_path


@pytest.fixture(scope="module")
def released() -> dict[str, str]:
    """The text of each student notebook as `nbgrader generate_assignment` makes it now."""
    return course.released_notebooks()


def test_notebook_files_match_their_generator():
    """Are the committed .ipynb files exactly what notebooks/build.py writes?"""
    spec = importlib.util.spec_from_file_location("notebook_build", NOTEBOOKS / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for path, text in build.rendered().items():
        assert path.read_text() == text, (
            f"{path.relative_to(REPO)} differs from notebooks/build.py: edit build.py and run "
            "python notebooks/build.py"
        )


def test_released_notebooks_are_up_to_date(released):
    """Does assignment/ hold the notebooks that nbgrader generates from notebooks/blackbox/?"""
    assert sorted(released) == sorted(STUDENT_NOTEBOOKS)
    for name, text in released.items():
        assert (course.RELEASE / name).read_text() == text, (
            f"assignment/{name} is stale: run python -m kit.release"
        )


def test_an_edited_or_missing_release_notebook_is_stale(released, tmp_path):
    """Does the release check name a notebook that was edited by hand, or deleted?"""
    for name, text in released.items():
        (tmp_path / name).write_text(text)
    assert course.stale_notebooks(released, tmp_path) == {}
    edited = released["episodes.ipynb"].replace("YOUR ANSWER HERE", "my answer", 1)
    (tmp_path / "episodes.ipynb").write_text(edited)
    (tmp_path / "learning_curves.ipynb").unlink()
    stale = course.stale_notebooks(released, tmp_path)
    assert sorted(stale) == ["episodes.ipynb", "learning_curves.ipynb"]
    assert "my answer" in stale["episodes.ipynb"], "the diff must show the edit"


REGION = re.compile(r"### BEGIN (?:HIDDEN TESTS|SOLUTION)\n(.*?)### END", re.DOTALL)


def hidden_lines(source: nbformat.NotebookNode) -> set[str]:
    """The distinctive lines of the hidden-test and solution regions of a notebook that
    appear nowhere else in it."""

    def distinctive(text: str) -> set[str]:
        return {line.strip() for line in text.splitlines() if len(line.strip()) > 25}

    hidden, public = set(), set()
    for cell in source.cells:
        for region in REGION.findall(cell.source):
            hidden |= distinctive(region)
        public |= distinctive(REGION.sub("", cell.source))
    return hidden - public


@pytest.mark.parametrize("name", STUDENT_NOTEBOOKS)
def test_students_never_see_solutions_hidden_tests_or_model_answers(released, name):
    """Does the released notebook lack every solution, hidden test and model answer?"""
    source = nbformat.read(SOURCE / name, 4)
    secret = hidden_lines(source)
    assert secret, f"{name} has no solution or hidden-test region: the check would be empty"
    text = released[name]
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, f"the released {name} still holds '### {marker}'"
    leaked = sorted(line for line in secret if line in text)
    assert not leaked, f"the released {name} leaks solution or hidden-test lines: {leaked[:3]}"
    answers = {
        nbgrader_id(cell)
        for cell in source.cells
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")
    }
    assert answers, f"{name} has no written question"
    for cell in nbformat.reads(text, 4).cells:
        if nbgrader_id(cell) in answers:
            assert cell.source == "YOUR ANSWER HERE", f"model answer {nbgrader_id(cell)} leaked"


@pytest.mark.parametrize("name", STUDENT_NOTEBOOKS)
def test_student_notebooks_have_graded_cells_with_points(name):
    """Does each student notebook hold solution cells, autograded tests with points and
    manually graded written answers?"""
    cells = [
        c.metadata["nbgrader"] for c in nbformat.read(SOURCE / name, 4).cells if nbgrader_id(c)
    ]
    solutions = [c for c in cells if c["solution"] and not c["grade"]]
    autograded = [c for c in cells if c["grade"] and not c["solution"]]
    written = [c for c in cells if c["grade"] and c["solution"]]
    assert solutions and autograded and written, f"{name}: a kind of graded cell is missing"
    assert all(c["points"] > 0 and c["locked"] for c in autograded)
    assert all(c["points"] > 0 for c in written)


def png_outputs(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", list(FIGURES), ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom_and_draws_its_figures(notebook_env, monkeypatch, path):
    """Does the notebook run without an error against the solutions, show its figures inline
    and save them as PNG files?"""
    monkeypatch.setenv("KIT_CODE", str(REPO / "solutions"))
    notebook = nbformat.read(path, 4)
    # nbclient raises CellExecutionError, naming the cell, on the first error.
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook_env)}},
    ).execute()
    saved = notebook_env / "figures"
    for figure in FIGURES[path]:
        assert (saved / figure).read_bytes().startswith(PNG_MAGIC), f"{figure} is not a PNG"
    assert png_outputs(notebook) >= len(FIGURES[path]), (
        f"{path.name} shows {png_outputs(notebook)} inline figures, expected "
        f"{len(FIGURES[path])}: is %matplotlib inline in its setup cell?"
    )


def submit(released_dir: Path, folder: Path, code: dict[str, Path], completed: set[str]) -> None:
    """A student's submission: the released notebooks, with the solution cells and written
    answers of the notebooks in `completed` filled in from the source, and the `code` files."""
    folder.mkdir(parents=True)
    for name in STUDENT_NOTEBOOKS:
        notebook = nbformat.read(released_dir / name, 4)
        if name in completed:
            answers = {nbgrader_id(c): c.source for c in nbformat.read(SOURCE / name, 4).cells}
            for cell in notebook.cells:
                if cell.metadata.get("nbgrader", {}).get("solution"):
                    cell.source = answers[nbgrader_id(cell)]
        nbformat.write(notebook, folder / name)
    for name, path in code.items():
        shutil.copy(path, folder / name)


@pytest.mark.slow
def test_generate_assignment_and_autograde_score_submissions(notebook_env):
    """In a fresh course folder: does generate_assignment release the notebooks with the stubs,
    and does autograde give full marks to a complete submission, the right partial marks to an
    incomplete one, and grade each student's own .py files?"""
    from nbgrader.api import Gradebook

    course_dir = notebook_env / "course"
    (course_dir / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", course_dir)
    shutil.copytree(SOURCE, course_dir / "notebooks" / course.ASSIGNMENT_ID)  # follows the links
    course.run_nbgrader(["generate_assignment", course.ASSIGNMENT_ID], course_dir)

    released_dir = course_dir / "release" / course.ASSIGNMENT_ID
    for name in ("load_data.py", "models.py"):
        assert (released_dir / name).read_text() == (course.RELEASE / name).read_text(), (
            f"the nbgrader release's {name} is not the stub of assignment/"
        )

    solutions, stubs = REPO / "solutions", course.RELEASE
    submitted = course_dir / "submitted"
    submit(
        released_dir,
        submitted / "complete" / course.ASSIGNMENT_ID,
        {"load_data.py": solutions / "load_data.py", "models.py": solutions / "models.py"},
        completed=set(STUDENT_NOTEBOOKS),
    )
    # Implemented the sampler and part 1, not the model nor part 2.
    submit(
        released_dir,
        submitted / "incomplete" / course.ASSIGNMENT_ID,
        {"load_data.py": solutions / "load_data.py", "models.py": stubs / "models.py"},
        completed={"episodes.ipynb"},
    )
    course.run_nbgrader(["autograde", course.ASSIGNMENT_ID], course_dir)

    for student in ("complete", "incomplete"):
        graded = course_dir / "autograded" / student / course.ASSIGNMENT_ID
        for name in ("load_data.py", "models.py"):
            assert (graded / name).read_text() == (
                submitted / student / graded.name / name
            ).read_text(), (
                f"autograde replaced {student}'s {name}: keep it in Autograde.exclude_overwriting"
            )

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        assignment = gradebook.find_assignment(course.ASSIGNMENT_ID)
        max_code = {nb.name: nb.max_code_score for nb in assignment.notebooks}

        def code_scores(student: str) -> dict[str, float]:
            submission = gradebook.find_submission(course.ASSIGNMENT_ID, student)
            return {nb.name: nb.code_score for nb in submission.notebooks}

        assert all(score > 0 for score in max_code.values())
        assert code_scores("complete") == max_code
        assert code_scores("incomplete") == {"episodes": max_code["episodes"], "learning_curves": 0}
        complete = gradebook.find_submission(course.ASSIGNMENT_ID, "complete")
        assert complete.needs_manual_grade, "the written answers must wait for a TA"


def test_task_and_prediction_figures_draw_tensors_and_all_correct_batches(tmp_path):
    """Do the notebooks' figure helpers take torch tensors, and draw a prediction figure even
    when a batch holds no wrong prediction?"""
    import numpy as np
    import torch

    from kit.plots import plot_predictions, plot_task, plot_tasks

    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.random((4, 3, 3, 784), dtype=np.float32))  # [B, K+1, N, 784]
    labels = torch.eye(3).expand(4, 3, 3, 3).clone()  # [B, K+1, N, N]
    plot_task(images[0], labels[0], path=tmp_path / "task.png")
    plot_tasks(images, labels, count=2, path=tmp_path / "tasks.png")
    fig = plot_predictions(images, labels, preds=labels, path=tmp_path / "predictions.png")
    texts = [text.get_text() for subfigure in fig.subfigs for text in subfigure.texts]
    assert "no wrong prediction in this batch" in texts
    for name in ("task.png", "tasks.png", "predictions.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC)
