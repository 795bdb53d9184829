"""Writing generated files without ever leaving half of one, and showing how they changed."""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from pathlib import Path

from kit.atomic import write_atomic

__all__ = ["replace_folder", "unified_diff", "write_atomic"]


def replace_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Make `folder` hold exactly `files` (relative path -> content): the new tree is written
    into a temporary sibling, then swapped in, so that `folder` is never a mix of the two."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".tmp"))
    old = staging.with_name(staging.name.removesuffix(".tmp") + ".old")
    try:
        for name, content in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            os.chmod(path, 0o644)
        os.chmod(staging, 0o755)
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists() and not folder.exists():
            os.replace(old, folder)  # put the previous tree back
        raise
    shutil.rmtree(old, ignore_errors=True)


def unified_diff(actual: bytes | None, expected: bytes, name: str) -> str:
    """A unified diff from the file on disk (`None`: missing) to the generated text; for a
    binary file, one line saying that it differs."""
    try:
        old = "" if actual is None else actual.decode()
        new = expected.decode()
    except UnicodeDecodeError:
        state = "missing" if actual is None else f"{len(actual)} bytes"
        return f"Binary {name} differs (on disk: {state}, generated: {len(expected)} bytes)\n"
    diff = difflib.unified_diff(
        old.splitlines(True), new.splitlines(True), f"{name} (on disk)", f"{name} (generated)"
    )
    return "".join(diff)
