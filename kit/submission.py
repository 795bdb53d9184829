"""Import a submission's `load_data.py` and `models.py` from a folder.

The kit's own commands (training, notebooks) run a student's code in-process through this
module, on the student's own machine. The grader never does: it runs submissions in a child
process (see `autograder/`).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
SUBMISSION_FILES = ("load_data.py", "models.py")


@dataclass(frozen=True)
class Submission:
    """The two modules of a submission: `load_data` (DataGenerator) and `models` (MANN)."""

    folder: Path
    load_data: ModuleType
    models: ModuleType


def has_reference() -> bool:
    """Whether the reference solutions are here: in the repository yes, in the student
    package (whose root is `REPO_ROOT` there) no."""
    return (REPO_ROOT / "solutions").is_dir()


def default_code() -> str:
    """The code a training runs by default: `solutions` in the repository; in the student
    package, the package folder (the student's own files)."""
    return "solutions" if has_reference() else str(REPO_ROOT)


def resolve_folder(code: str | Path) -> Path:
    """`"solutions"`, `"assignment"` or a path to a folder holding the two files."""
    folder = Path(code)
    if not folder.is_absolute() and not folder.exists() and (REPO_ROOT / folder).exists():
        folder = REPO_ROOT / folder
    missing = [name for name in SUBMISSION_FILES if not (folder / name).is_file()]
    if missing:
        choices = "--code solutions, --code assignment, or " if has_reference() else "--code "
        raise FileNotFoundError(
            f"{folder} does not hold {' and '.join(missing)}: pass {choices}"
            "the folder with your load_data.py and models.py"
        )
    return folder.resolve()


def load_submission(code: str | Path) -> Submission:
    """Import `load_data.py` and `models.py` from `code` (see `resolve_folder`)."""
    folder = resolve_folder(code)
    modules = {}
    for filename in SUBMISSION_FILES:
        stem = filename.removesuffix(".py")
        # A name per folder, so that solutions and a student's files can be loaded side by side.
        name = f"submission_{abs(hash(str(folder))):x}_{stem}"
        spec = importlib.util.spec_from_file_location(name, folder / filename)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules[stem] = module
    return Submission(folder, modules["load_data"], modules["models"])
