"""Hint levels: how much of the "how" the student files give away.

The single source of truth (`solutions/*.py`, and the solution cells of the notebooks in
`publish/notebooks/`) holds both levels, as docstring sections of the functions students
write:

    Outline:                     # --hints outline: the contract and shapes, no code
        - The N classes are N distinct characters ...
    Steps:                       # --hints steps: numbered steps with code-level hints
        1. Pick N distinct characters: `self.rng.choice(C, size=N, replace=False)`.

A generated student file keeps the section of the chosen level and drops the other (with the
blank line before it). A section runs from its header line to the last line indented deeper
than the header. Text outside these sections (Args, Returns, the module's description) is the
contract and is the same at every level.
"""

from __future__ import annotations

import re

LEVELS = ("steps", "outline")
DEFAULT_LEVEL = "steps"
SECTIONS = {"steps": "Steps:", "outline": "Outline:"}  # level -> its docstring section header
_HEADER = re.compile(r"^(?P<indent>[ \t]*)(?P<title>Steps|Outline):[ \t]*$")


def check_level(level: str) -> str:
    """`level` if it is a hint level; raises ValueError naming the valid ones otherwise."""
    if level not in LEVELS:
        raise ValueError(f"unknown hint level {level!r}: use one of {', '.join(LEVELS)}")
    return level


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def sections(text: str) -> list[tuple[str, int, int]]:
    """`(header, first line, end line)` of every hint section of `text` (0-based line
    numbers, end exclusive, trailing blank lines not included)."""
    lines = text.split("\n")
    found = []
    for start, line in enumerate(lines):
        match = _HEADER.match(line)
        if match is None:
            continue
        end = start + 1
        for index in range(start + 1, len(lines)):
            if lines[index].strip() and _indent(lines[index]) <= len(match["indent"]):
                break
            if lines[index].strip():
                end = index + 1
        found.append((f"{match['title']}:", start, end))
    return found


def select(text: str, level: str) -> str:
    """`text` with the hint sections of every other level removed (see the module doc)."""
    keep = SECTIONS[check_level(level)]
    lines = text.split("\n")
    drop: set[int] = set()
    for header, start, end in sections(text):
        if header != keep:
            drop.update(range(start, end))
            if start > 0 and not lines[start - 1].strip():
                drop.add(start - 1)  # the blank line that separated it from the text before
    return "\n".join(line for index, line in enumerate(lines) if index not in drop)
