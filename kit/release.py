"""Generate the student release `assignment/` from the reference `solutions/`.

    python -m kit.release            # write assignment/: stubs, public checks, notebooks
    python -m kit.release --check    # exit 1 if assignment/ is stale (the tests run this)

Every region between `### BEGIN SOLUTION` and `### END SOLUTION` is replaced by a stub that
raises `NotImplementedError`, by nbgrader's own `ClearSolutions` preprocessor (the one that
`nbgrader generate_assignment` runs on notebooks), applied to each `.py` file as a one-cell
notebook. The numbered steps in each docstring stay, and tell the student what to build.
The student notebooks come from `nbgrader generate_assignment` (see `kit.course`).

The autograder's public checks (`autograder/checks/public/`) are copied verbatim into
`assignment/public_checks/`, so that students hold the checks they can run with
`python -m autograder grade FOLDER --public`. The hidden checks and thresholds
(`autograder/checks/hidden/`) are never copied.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions

from kit.submission import REPO_ROOT, SUBMISSION_FILES

SOURCE = REPO_ROOT / "solutions"
RELEASE = REPO_ROOT / "assignment"
PUBLIC_CHECKS = REPO_ROOT / "autograder" / "checks" / "public"
PUBLIC_CHECK_FILES = ("test_episodes.py", "test_model.py")
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


def released_files(source: Path = SOURCE, public_checks: Path = PUBLIC_CHECKS) -> dict[str, str]:
    """Path relative to `assignment/` -> the text it must have there: the stubs generated
    from `source/` and verbatim copies of the public checks."""
    files = {name: strip_solutions((source / name).read_text(), name) for name in SUBMISSION_FILES}
    for name in PUBLIC_CHECK_FILES:
        files[f"public_checks/{name}"] = (public_checks / name).read_text()
    return files


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file next to it, then `os.replace`: readers
    see the old file or the new one, never half of it, and a failure leaves nothing behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        try:
            tmp.write(text)
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    try:
        os.chmod(tmp.name, 0o644)  # NamedTemporaryFile is private (0600); these files are not
        os.replace(tmp.name, path)
    except BaseException:
        Path(tmp.name).unlink(missing_ok=True)
        raise


def stale_against(expected_files: dict[str, str], release: Path, origin: str) -> dict[str, str]:
    """Name -> unified diff, for each file of `release/` whose text differs from
    `expected_files[name]` (a missing file counts as empty); `origin` labels the expected side."""
    stale = {}
    for name, expected in expected_files.items():
        path = release / name
        actual = path.read_text() if path.exists() else ""
        if actual != expected:
            diff = difflib.unified_diff(
                actual.splitlines(True),
                expected.splitlines(True),
                f"{release.name}/{name}",
                f"generated from {origin}/{name}",
            )
            stale[name] = "".join(diff)
    return stale


def stale_files(source: Path = SOURCE, release: Path = RELEASE) -> dict[str, str]:
    """File name -> unified diff, for each file of `release/` that differs from the one
    generated from `source/` (a missing file counts as empty)."""
    return stale_against(released_files(source), release, source.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kit.release",
        description="Generate assignment/ (student stubs) from solutions/ (reference), and "
        "its notebooks from notebooks/blackbox/ with nbgrader generate_assignment.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if assignment/ is stale (default: off)",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(SOURCE, RELEASE)
        for diff in stale.values():
            print(diff)
        if stale:
            print(
                f"error: assignment/ is stale ({', '.join(stale)}): run python -m kit.release",
                file=sys.stderr,
            )
            return 1
        print("assignment/ is up to date with solutions/")
        return 0
    for name, text in released_files(SOURCE).items():
        write_atomic(RELEASE / name, text)
        print(f"wrote assignment/{name}")
    return 0


def main_with_notebooks(argv: list[str] | None = None) -> int:
    """`python -m kit.release`: `main` for the `.py` stubs, then the same for the student
    notebooks (`kit.course.release_notebooks`, which runs nbgrader for some seconds)."""
    from kit.course import release_notebooks

    status = main(argv)
    check = "--check" in (sys.argv[1:] if argv is None else argv)
    return max(status, release_notebooks(check=check))


if __name__ == "__main__":
    sys.exit(main_with_notebooks())
