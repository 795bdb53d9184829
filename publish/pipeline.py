"""The release pipeline: every generated file of the kit, in one ordered list of steps.

    step                  from                              writes
    1. notebooks          publish/notebooks/*.py            notebooks/blackbox/*.ipynb, demo.ipynb
    2. stubs              solutions/*.py, public checks     assignment/*.py, public_checks/
    3. student notebooks  step 1, by nbgrader               assignment/*.ipynb
    4. handout            templates, checks' points, step 1 handout/: README, SUBMIT, requirements
    5. package            steps 2-4 (+ the runtime)         dist/blackbox-student/ and its .zip

Each step gets the files the earlier steps made (in memory) and returns its own, so that
`--check` compares what a full run would write, never a mix of old and new. Everything is
generated before anything is written; each file is then written atomically, and the package
folder swapped in whole. `dist/` is git-ignored: `--check` compares it only where it exists.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kit.submission import REPO_ROOT
from publish import course, handout, hints, notebooks, package, stubs
from publish.files import replace_folder, unified_diff, write_atomic

STUDENT_NOTEBOOKS = ("episodes.ipynb", "learning_curves.ipynb")


def configured_level(root: Path = REPO_ROOT) -> str:
    """The course's hint level: `[tool.publish] hints` in `root/pyproject.toml`, else steps.

    Raises:
        ValueError: the level there is not a hint level.
    """
    pyproject = root / "pyproject.toml"
    config = tomllib.loads(pyproject.read_text()) if pyproject.is_file() else {}
    return hints.check_level(
        config.get("tool", {}).get("publish", {}).get("hints", hints.DEFAULT_LEVEL)
    )


@dataclass(frozen=True)
class Settings:
    """What a run reads (`root`: the repository) and the hint level of the student files."""

    hints: str = hints.DEFAULT_LEVEL
    root: Path = REPO_ROOT


Outputs = dict[str, bytes]  # repository path (POSIX) -> content


def notebook_sources(outputs: Outputs) -> dict[str, bytes]:
    """The rendered nbgrader sources of the student notebooks: file name -> bytes."""
    return {name: outputs[f"{notebooks.SOURCE_FOLDER}/{name}"] for name in STUDENT_NOTEBOOKS}


def build_notebooks(outputs: Outputs, settings: Settings) -> Outputs:
    return notebooks.sources(settings.hints)


def build_stubs(outputs: Outputs, settings: Settings) -> Outputs:
    files = stubs.released_files(
        settings.root / "solutions",
        settings.root / "autograder" / "checks" / "public",
        settings.hints,
    )
    return {f"assignment/{name}": text.encode() for name, text in files.items()}


def build_student_notebooks(outputs: Outputs, settings: Settings) -> Outputs:
    released = course.student_notebooks(
        notebook_sources(outputs), settings.root / "nbgrader_config.py"
    )
    return {f"assignment/{name}": content for name, content in released.items()}


def build_handout(outputs: Outputs, settings: Settings) -> Outputs:
    files = handout.files(notebook_sources(outputs), settings.root)
    return {f"handout/{name}": content for name, content in files.items()}


def build_package(outputs: Outputs, settings: Settings) -> Outputs:
    sources = {f"{notebooks.SOURCE_FOLDER}/{n}": c for n, c in notebook_sources(outputs).items()}
    return package.build(outputs, sources, settings.root, hints=settings.hints)


STEPS: tuple[tuple[str, Callable[[Outputs, Settings], Outputs]], ...] = (
    ("notebooks", build_notebooks),
    ("stubs", build_stubs),
    ("student notebooks", build_student_notebooks),
    ("handout", build_handout),
    ("package", build_package),
)


def generate(settings: Settings, report: Callable[[str], None] = lambda line: None) -> Outputs:
    """Run every step in order; return every generated file. `report` gets one line per step."""
    outputs: Outputs = {}
    for index, (name, step) in enumerate(STEPS, start=1):
        start = time.perf_counter()
        made = step(dict(outputs), settings)
        overlap = sorted(set(made) & set(outputs))
        if overlap:
            raise RuntimeError(f"step {name} writes {overlap[0]}, made by an earlier step")
        outputs.update(made)
        seconds = time.perf_counter() - start
        report(f"[{index}/{len(STEPS)}] {name}: {len(made)} files ({seconds:.1f} s)")
    return outputs


def is_package(path: str) -> bool:
    return path == package.ZIP or path.startswith(f"{package.FOLDER}/")


def stale(outputs: Outputs, target: Path) -> dict[str, str]:
    """Repository path -> diff, for every generated file that `target` lacks or holds with
    other content, and every extra file in the package folder. The package is compared only
    when its folder exists."""
    built = (target / package.FOLDER).is_dir()
    diffs = {}
    for path, content in outputs.items():
        if is_package(path) and not built:
            continue
        file = target / path
        actual = file.read_bytes() if file.is_file() else None
        if actual != content:
            diffs[path] = unified_diff(actual, content, path)
    if built:
        for file in sorted((target / package.FOLDER).rglob("*")):
            path = file.relative_to(target).as_posix()
            if file.is_file() and path not in outputs:
                diffs[path] = f"{path}: not generated (an extra file in the package)\n"
    return diffs


def write(outputs: Outputs, target: Path) -> list[str]:
    """Write every generated file that changed into `target`; return their paths."""
    changed = [
        path
        for path, content in outputs.items()
        if not is_package(path)
        and (not (target / path).is_file() or (target / path).read_bytes() != content)
    ]
    for path in changed:
        write_atomic(target / path, outputs[path])
    package_files = {
        path.removeprefix(f"{package.FOLDER}/"): content
        for path, content in outputs.items()
        if path.startswith(f"{package.FOLDER}/")
    }
    package_changed = [p for p in stale(outputs, target) if is_package(p)]
    if package_changed or not (target / package.FOLDER).is_dir():
        replace_folder(target / package.FOLDER, package_files)
        write_atomic(target / package.ZIP, outputs[package.ZIP])
        changed += [package.FOLDER + "/", package.ZIP]
    return changed
