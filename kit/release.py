"""Generate the student release `assignment/` from the reference `solutions/` and notebooks.

    python -m kit.release            # write assignment/: the .py stubs and the notebooks
    python -m kit.release --check    # exit 1 if assignment/ is stale (the tests run this)

Every region between `### BEGIN SOLUTION` and `### END SOLUTION` is replaced by a stub that
raises `NotImplementedError`, by nbgrader's own `ClearSolutions` preprocessor (the one that
`nbgrader generate_assignment` runs on notebooks), applied to each `.py` file as a one-cell
notebook. The numbered steps in each docstring stay, and tell the student what to build.

The student notebooks come from their nbgrader sources in `notebooks/blackbox/` through
`nbgrader generate_assignment`, run with the repository's `nbgrader_config.py` in a temporary
course folder (so that no gradebook is written here), and are copied next to the stubs.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

from kit.submission import REPO_ROOT, SUBMISSION_FILES

SOURCE = REPO_ROOT / "solutions"
RELEASE = REPO_ROOT / "assignment"
ASSIGNMENT_ID = "blackbox"  # the nbgrader assignment: notebooks/blackbox/ holds its source
NOTEBOOK_SOURCE = REPO_ROOT / "notebooks" / ASSIGNMENT_ID
CODE_STUB = (
    "# TODO: follow the numbered steps in the docstring above.\n"
    'raise NotImplementedError("not implemented yet: see the steps in the docstring")'
)


def strip_solutions(source: str, name: str = "file") -> str:
    """Return `source` with every solution region replaced by the stub."""
    cell = nbformat.v4.new_code_cell(source)
    # ClearSolutions only clears cells that nbgrader's metadata marks as solution cells.
    cell.metadata["nbgrader"] = {
        "solution": True,
        "grade": False,
        "locked": False,
        "grade_id": name,
        "schema_version": 3,
    }
    notebook = nbformat.v4.new_notebook(cells=[cell])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    clear = ClearSolutions(code_stub={"python": CODE_STUB})
    notebook, _ = clear.preprocess(notebook, {})
    return notebook.cells[0].source.rstrip("\n") + "\n"


def released_files() -> dict[str, str]:
    """File name -> the text it must have in `assignment/`."""
    return {name: strip_solutions((SOURCE / name).read_text(), name) for name in SUBMISSION_FILES}


def released_notebooks() -> dict[str, str]:
    """Notebook name -> the text `nbgrader generate_assignment` gives it (solutions and hidden
    tests removed, cells locked), generated in a temporary course folder."""
    with tempfile.TemporaryDirectory(prefix="kit-release-") as tmp:
        course = Path(tmp)
        shutil.copy(REPO_ROOT / "nbgrader_config.py", course)
        source = course / "notebooks" / ASSIGNMENT_ID
        source.mkdir(parents=True)
        for notebook in sorted(NOTEBOOK_SOURCE.glob("*.ipynb")):
            shutil.copy(notebook, source)
        run_nbgrader(["generate_assignment", ASSIGNMENT_ID, "--force"], course)
        released = sorted((course / "release" / ASSIGNMENT_ID).glob("*.ipynb"))
        return {path.name: path.read_text() for path in released}


def run_nbgrader(args: list[str], course: Path) -> str:
    """Run `nbgrader <args>` in the course folder `course`; return its log, raise on failure."""
    env = dict(os.environ)
    # nbgrader runs the `alembic` command: find it next to this interpreter, venv active or not.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        check=False,  # a failure is reported below with the tail of its log
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
    )
    log = done.stdout + done.stderr
    if done.returncode != 0 or "ERROR" in log:
        tail = "\n".join(log.splitlines()[-20:])
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {course}:\n{tail}")
    return log


def release_texts() -> dict[str, str]:
    """Every file of `assignment/` -> the text it must have: the stubs and the notebooks."""
    return {**released_files(), **released_notebooks()}


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def stale_files() -> dict[str, str]:
    """File name -> unified diff, for each released file that differs from the generated one."""
    stale = {}
    for name, expected in release_texts().items():
        path = RELEASE / name
        actual = path.read_text() if path.exists() else ""
        if actual != expected:
            diff = difflib.unified_diff(
                actual.splitlines(True),
                expected.splitlines(True),
                f"assignment/{name}",
                f"generated from {'solutions' if name.endswith('.py') else 'notebooks/blackbox'}/{name}",
            )
            stale[name] = "".join(diff)
    return stale


def check() -> int:
    """Print the diff of every stale file of `assignment/`; 1 if there is one, else 0."""
    stale = stale_files()
    for diff in stale.values():
        print(diff)
    if stale:
        print(
            f"error: assignment/ is stale ({', '.join(stale)}): run python -m kit.release",
            file=sys.stderr,
        )
        return 1
    print("assignment/ is up to date with solutions/ and notebooks/blackbox/")
    return 0


def release() -> int:
    """Write every file of `assignment/`; all of them are generated before any is written."""
    texts = release_texts()
    for name, text in texts.items():
        write_atomic(RELEASE / name, text)
        print(f"wrote assignment/{name}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit.release",
        description="Generate assignment/ (student stubs and notebooks) from solutions/ "
        "(reference code) and notebooks/blackbox/ (nbgrader source notebooks).",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if assignment/ is stale (default: off)",
    )
    args = parser.parse_args(argv)
    try:
        return check() if args.check else release()
    except RuntimeError as error:  # nbgrader failed: the message ends with its log
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
