"""The student's report of a run of the public checks: what `python -m check` prints.

One header line; then every check with its points, its question and its full message (never
cut); the checks that failed only because a function still raises `NotImplementedError` are
folded into one line per function; a closing line with the score and the hidden points still
to be graded.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable

from check.plugin import Record

# The harness names the deepest frame of the student's code: "(models.py, line 40, in forward)".
FRAME = re.compile(r"\((\w+\.py), line \d+, in (\w+)\)")


def unimplemented(record: Record) -> tuple[str, str] | None:
    """`(file, function)` when `record` failed because that function raised
    NotImplementedError, else None."""
    if record.status == "passed" or "NotImplementedError" not in record.message:
        return None
    frames = FRAME.findall(record.message)
    return frames[-1] if frames else ("your code", "a function")


def indented(text: str, width: int = 100, indent: str = "        ") -> str:
    """`text` wrapped to `width` columns, every line indented (nothing is left out)."""
    lines = []
    for paragraph in text.splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width, initial_indent=indent, subsequent_indent=indent)
    return "\n".join(lines)


def lines(records: Iterable[Record], hidden_points: float) -> list[str]:
    """The report's lines after the header."""
    records = list(records)
    out: list[str] = []
    waiting: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        missing = unimplemented(record)
        if missing is not None:
            waiting.setdefault(missing, []).append(record)
            continue
        score = record.points if record.status == "passed" else 0
        mark = "PASS" if record.status == "passed" else "FAIL"
        out.append(f"  {mark} {score:g}/{record.points:g}  {record.name}")
        if record.question:
            out.append(indented(record.question))
        if record.message:
            out.append(indented(record.message))
    for (file, function), missing in waiting.items():
        points = sum(record.points for record in missing)
        out.append(
            f"  TODO 0/{points:g}  {function}() in {file} is not implemented yet "
            f"(NotImplementedError): {len(missing)} check(s) wait for it"
        )
    score = sum(record.points for record in records if record.status == "passed")
    total = sum(record.points for record in records)
    passed = sum(record.status == "passed" for record in records)
    out.append(
        f"public checks: {score:g} / {total:g} points ({passed} of {len(records)} checks passed); "
        f"{hidden_points:g} hidden points remain to be graded after you submit (accuracy after "
        "the grader's own training, on meta-test tasks)"
    )
    return out
