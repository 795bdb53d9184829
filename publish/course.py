"""The student notebooks of `assignment/`, made by `nbgrader generate_assignment`.

The repository root is the nbgrader course folder (`nbgrader_config.py`), and the assignment
"blackbox" has its source in `notebooks/blackbox/`: the student notebooks with their solutions,
hidden tests and points (rendered by `publish.notebooks`). `student_notebooks` runs
`nbgrader generate_assignment` on the rendered sources in a temporary course folder (so that
no gradebook is written in the repository) and returns the student versions: solutions,
model answers and hidden tests removed, cells locked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from kit.submission import REPO_ROOT
from publish.notebooks import ASSIGNMENT_ID


def run_nbgrader(args: list[str], course: Path) -> str:
    """Run `nbgrader <args>` in the course folder `course`; return its log.

    Raises:
        RuntimeError: nbgrader failed or logged an error; the message ends with its log.
    """
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


def student_notebooks(sources: dict[str, bytes], config: Path | None = None) -> dict[str, bytes]:
    """Notebook file name -> the bytes `nbgrader generate_assignment` gives it, for the
    source notebooks `sources` (file name -> bytes), in a temporary course folder set up by
    `config` (default: the repository's `nbgrader_config.py`)."""
    config = config or REPO_ROOT / "nbgrader_config.py"
    with tempfile.TemporaryDirectory(prefix="publish-course-") as tmp:
        course = Path(tmp)
        (course / "nbgrader_config.py").write_bytes(config.read_bytes())
        folder = course / "notebooks" / ASSIGNMENT_ID
        folder.mkdir(parents=True)
        for name, content in sources.items():
            (folder / name).write_bytes(content)
        run_nbgrader(["generate_assignment", ASSIGNMENT_ID, "--force"], course)
        released = sorted((course / "release" / ASSIGNMENT_ID).glob("*.ipynb"))
        return {path.name: path.read_bytes() for path in released}
