"""What a grading produces: the grader's error type, results.json in Gradescope's schema, and
the results of a grading that did not complete.

`cli` (one grading), `batch` (a class) and `gradescope` (the package) all write their results
through here, so none of them imports another for it.
"""

from __future__ import annotations

import json
from pathlib import Path

from kit.atomic import write_atomic

__all__ = [
    "NOT_GRADED",
    "GradingError",
    "failure_results",
    "results_json",
    "status_of",
    "write_atomic",
    "write_results",
]

NOT_GRADED = "NOT GRADED ("  # output prefix of a results.json written for a failed grading
OUTPUT_LIMIT = 8000  # characters of the submission's printed output kept in results.json


class GradingError(Exception):
    """The grader could not grade (not the submission's fault)."""


def results_json(outcomes, seconds: float) -> dict:
    """The Gradescope results of `outcomes` (an `autograder.plugin.Outcomes`): score,
    execution_time, output, tests[] (one per check that ran or was stopped)."""
    records = [r for r in outcomes.records.values() if r.status != "not run"]
    tests = [
        {
            "name": record.name,
            "score": record.points if record.status == "passed" else 0.0,
            "max_score": record.points,
            "status": "passed" if record.status == "passed" else "failed",
            "output": record.message,
            "visibility": record.visibility,
        }
        for record in records
    ]
    score = sum(test["score"] for test in tests)
    total = sum(test["max_score"] for test in tests)
    output = "\n".join(outcomes.header + [f"score {score:g} / {total:g}"])
    printed = "\n".join(outcomes.outputs)
    if printed:
        if len(printed) > OUTPUT_LIMIT:
            printed = printed[:OUTPUT_LIMIT] + "\n[... truncated ...]"
        output += "\n\nYour code printed (printing never costs points; this is an excerpt):\n"
        output += printed
    return {"score": score, "execution_time": round(seconds, 1), "output": output, "tests": tests}


def failure_results(status: str, reason: str, seconds: float) -> dict:
    """A results.json (Gradescope schema) for a grading that did not complete: score 0."""
    return {
        "score": 0.0,
        "execution_time": round(seconds, 1),
        "output": f"{NOT_GRADED}{status}): {reason}",
        "tests": [],
    }


def status_of(results: dict) -> str:
    """`graded`, or why the grading did not complete (`timeout`, `grader error`)."""
    output = results.get("output", "")
    if not results.get("tests") and output.startswith(NOT_GRADED):
        return output[len(NOT_GRADED) :].split(")", 1)[0]
    return "graded"


def write_results(path: Path, results: dict) -> None:
    """Write a results.json atomically (a reader never sees half of one)."""
    write_atomic(Path(path), json.dumps(results, indent=2) + "\n")
