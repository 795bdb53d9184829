"""`python -m autograder grade SUBMISSION`: run the checks, print a table, write results.json.

(`grade-all` is in `autograder.batch`, `gradescope` in `autograder.gradescope`.)

The checks are pytest tests under `autograder/checks/` (public/ ships to students, hidden/
does not); this module runs pytest in-process with `autograder.plugin`, collects one record
per check and writes them in the Gradescope schema. Exit 0 whenever grading completed,
whatever the score; exit 1, with one line on stderr, when the grader itself could not grade.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from autograder.feedback import HINTS_VARIABLE, feedback_lines
from autograder.plugin import Outcomes, Record

CHECKS = Path(__file__).resolve().parent / "checks"
PUBLIC_CHECKS = CHECKS / "public"
HIDDEN_CHECKS = CHECKS / "hidden"  # accuracy checks and thresholds: never in assignment/
OUTPUT_LIMIT = 8000  # characters of the submission's printed output kept in results.json


class GradingError(Exception):
    """The grader could not grade (not the submission's fault)."""


def check_paths(public: bool) -> list[Path]:
    """The check folders to run: public only, or public and hidden when the hidden ones exist."""
    if public or not HIDDEN_CHECKS.is_dir():
        return [PUBLIC_CHECKS]
    return [PUBLIC_CHECKS, HIDDEN_CHECKS]


def pytest_args(args: argparse.Namespace, device: str) -> list[str]:
    argv = [str(path) for path in check_paths(args.public)]
    argv += [
        "-c",
        os.devnull,  # no repository pytest configuration: the grader's own settings only
        "--rootdir",
        str(CHECKS),
        "-p",
        "autograder.plugin",
        "-p",
        "no:cacheprovider",
        "--import-mode=importlib",
        "--strict-markers",
        "--tb=no",
        "-q",
        "--submission",
        str(args.submission),
        "--device",
        device,
        "--seed",
        str(args.seed),
        "--threads",
        str(args.threads),
        "--timeout-scale",
        str(args.timeout_scale),
        "--jobs",
        str(args.jobs),
    ]
    if args.accuracy_attempts:
        argv += ["--accuracy-attempts", str(args.accuracy_attempts)]
    if args.only:
        argv += ["-k", args.only]
    return argv


def run_checks(args: argparse.Namespace, device: str) -> Outcomes:
    """Run pytest in-process; raise `GradingError` when the run itself broke."""
    import pytest

    outcomes = Outcomes()
    captured = io.StringIO()
    redirect = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(captured)
    with redirect:
        code = pytest.main(pytest_args(args, device), plugins=[outcomes])
    if outcomes.collection_errors:
        raise GradingError("the checks could not be collected: " + outcomes.collection_errors[0])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise GradingError(f"no check matches --only {args.only!r}")
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        if not args.verbose:
            print(captured.getvalue(), file=sys.stderr)
        raise GradingError(f"pytest stopped with exit code {int(code)} (its output is above)")
    errors = [r for r in outcomes.records.values() if r.status == "error"]
    if errors:
        if args.verbose:
            print(errors[0].traceback, file=sys.stderr)
        raise GradingError(f"check {errors[0].nodeid} broke with a {errors[0].message}")
    return outcomes


def results_json(outcomes: Outcomes, seconds: float) -> dict:
    """The Gradescope results: score, execution_time, output, tests[]."""
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
    return {
        "score": score,
        "execution_time": round(seconds, 1),
        "output": output,
        "tests": tests,
    }


def table(records: list[Record]) -> str:
    """A readable table: check, points, outcome, message; then each failure's whole message."""
    rows = [("check", "points", "outcome", "message")]
    for r in records:
        earned = r.points if r.status == "passed" else 0
        message = r.message.split(". Observed:")[0]
        rows.append(
            (r.name, f"{earned:g}/{r.points:g}", r.status, textwrap.shorten(message, 60) or "-")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}"
        for row in rows
    ]
    lines.insert(1, "-" * (sum(widths) + 6 + 40))
    failed = [r for r in records if r.status != "passed"]
    if failed:
        lines += ["", "Feedback:"]
        lines += feedback_lines(failed)
    return "\n".join(lines)


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def grade(args: argparse.Namespace) -> int:
    from kit.submission import SUBMISSION_FILES
    from kit.train import resolve_device

    started = time.perf_counter()
    folder = Path(args.submission)
    if not folder.is_dir():
        raise GradingError(
            f"{folder} is not a folder: pass the folder holding your load_data.py and models.py"
        )
    if not any((folder / name).is_file() for name in SUBMISSION_FILES):
        raise GradingError(f"{folder} holds neither load_data.py nor models.py")
    args.submission = folder.resolve()
    try:
        device = str(resolve_device(args.device))
    except ValueError as error:
        raise GradingError(str(error)) from None
    if getattr(args, "hints", None):
        os.environ[HINTS_VARIABLE] = args.hints  # read by autograder.feedback.BUGS
    outcomes = run_checks(args, device)
    results = results_json(outcomes, time.perf_counter() - started)
    records = [r for r in outcomes.records.values() if r.status != "not run"]
    print("\n".join(outcomes.header))
    print()
    print(table(records))
    total = sum(r.points for r in records)
    print(f"\nscore: {results['score']:g} / {total:g}   ({results['execution_time']:.0f} s)")
    write_atomic(Path(args.out), json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from autograder import batch, gradescope

    parser = argparse.ArgumentParser(
        prog="python -m autograder",
        description="Grade a homework submission (a folder holding load_data.py and models.py).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    g = commands.add_parser(
        "grade",
        help="run the checks on a submission and write results.json",
        description="Run the checks on SUBMISSION in a separate process, print a table (check, "
        "points, outcome, message) and write Gradescope results. Exit 0 whenever grading "
        "completed, whatever the score; 1 when the grader could not grade.",
    )
    g.add_argument(
        "submission", metavar="SUBMISSION", help="folder with load_data.py and models.py"
    )
    g.add_argument(
        "--out", default="results.json", help="where to write the results (default: results.json)"
    )
    g.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the submission's MANN runs; auto takes CUDA when present (default: auto)",
    )
    g.add_argument(
        "--only",
        metavar="PATTERN",
        help="run only the checks matching this pytest -k expression, e.g. 'shuffled or loss' "
        "(default: all)",
    )
    g.add_argument(
        "--public",
        action="store_true",
        help="run only the public checks, the ones students have (default: off)",
    )
    g.add_argument(
        "--seed", type=int, default=0, help="seed of the grader's tasks and training (default: 0)"
    )
    g.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads of the submission's process; one is fastest on a busy 2-core "
        "machine (default: 1)",
    )
    g.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiply every call's timeout, for slow machines (default: 1.0)",
    )
    g.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="accuracy-check trainings run at a time, each in its own process (default: 2)",
    )
    g.add_argument(
        "--accuracy-attempts",
        type=int,
        help="fresh models an accuracy check may train before it fails (default: the hidden "
        "setting, 3)",
    )
    g.add_argument(
        "--hints",
        choices=("steps", "outline"),
        default=None,
        help="how much of the fix the feedback shows, as the student files' hint level: steps "
        "(code) or outline (words only) (default: $AUTOGRADER_HINTS, else steps)",
    )
    g.add_argument("--verbose", action="store_true", help="show pytest's own output (default: off)")
    batch.add_parser(commands)
    gradescope.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from autograder import batch, gradescope

    args = build_parser().parse_args(argv)
    if args.command in ("grade", "grade-all") and (
        args.threads < 1
        or args.jobs < 1
        or args.timeout_scale <= 0
        or (args.accuracy_attempts or 1) < 1
    ):
        print(
            "error: --threads, --jobs and --accuracy-attempts must be >= 1, --timeout-scale > 0",
            file=sys.stderr,
        )
        return 1
    try:
        if args.command == "grade-all":
            return batch.grade_all(args)
        if args.command == "gradescope":
            return gradescope.build(args)
        return grade(args)
    except KeyboardInterrupt:
        print("error: interrupted; finished results are kept, rerun to resume", file=sys.stderr)
        return 1
    except GradingError as error:
        print(f"error: could not grade: {error}", file=sys.stderr)
        return 1
