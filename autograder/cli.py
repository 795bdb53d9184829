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
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

from autograder import options, runner
from autograder.feedback import HINTS_VARIABLE, feedback_lines
from autograder.options import Grading
from autograder.plugin import Outcomes, Record
from autograder.results import GradingError, results_json, write_results

CHECKS = Path(__file__).resolve().parent / "checks"
PUBLIC_CHECKS = CHECKS / "public"
HIDDEN_CHECKS = CHECKS / "hidden"  # accuracy checks and thresholds: never in assignment/
DEADLINE_GRACE = 20.0  # seconds past --deadline before the grader gives up on its checks


def check_paths(public: bool) -> list[Path]:
    """The check folders to run: public only, or public and hidden when the hidden ones exist."""
    if public or not HIDDEN_CHECKS.is_dir():
        return [PUBLIC_CHECKS]
    return [PUBLIC_CHECKS, HIDDEN_CHECKS]


def pytest_args(grading: Grading) -> list[str]:
    argv = [str(path) for path in check_paths(grading.public)]
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
        str(grading.submission),
        *grading.argv(plugin=True),
    ]
    if grading.only:
        argv += ["-k", grading.only]
    return argv


def run_checks(grading: Grading, outcomes: Outcomes, verbose: bool = False) -> Outcomes:
    """Run pytest in-process; raise `GradingError` when the run itself broke."""
    import pytest

    captured = io.StringIO()
    redirect = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(captured)
    with redirect:
        try:
            code = pytest.main(pytest_args(grading), plugins=[outcomes])
        except Exception:  # a fixture's teardown broke on work the deadline stopped
            if not runner.STATE.past_deadline():
                raise
    if runner.STATE.past_deadline() and not outcomes.collection_errors:
        return outcomes  # stopped midway: what was graded stands, the rest is not graded
    if outcomes.collection_errors:
        raise GradingError("the checks could not be collected: " + outcomes.collection_errors[0])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        raise GradingError(f"no check matches --only {grading.only!r}")
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        if not verbose:
            print(captured.getvalue(), file=sys.stderr)
        raise GradingError(f"pytest stopped with exit code {int(code)} (its output is above)")
    errors = [r for r in outcomes.records.values() if r.status == "error"]
    if errors:
        if verbose:
            print(errors[0].traceback, file=sys.stderr)
        raise GradingError(f"check {errors[0].nodeid} broke with a {errors[0].message}")
    return outcomes


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


def watch_deadline(grading: Grading, outcomes: Outcomes, out: Path, finished: threading.Event):
    """The deadline's last word, on a thread: when --deadline passes, kill every child (the
    checks waiting on them stop with the deadline's verdict); if the checks have still not
    finished `DEADLINE_GRACE` seconds later, write results.json from what was graded and end
    the process."""
    from autograder import sandbox

    at = grading.deadline_at()
    if at is None or finished.wait(max(0.0, at - time.monotonic())):
        return
    sandbox.kill_all()
    if finished.wait(DEADLINE_GRACE):
        return
    outcomes.stop_unfinished()
    write_results(out, results_json(outcomes, time.monotonic() - options.STARTED))
    print(f"deadline reached: wrote {out} with what was graded", file=sys.stderr)
    sandbox.kill_all()
    os._exit(0)


def grade(args: argparse.Namespace) -> int:
    from autograder.device import resolve_device
    from kit.submission import SUBMISSION_FILES

    folder = Path(args.submission)
    if not folder.is_dir():
        raise GradingError(
            f"{folder} is not a folder: pass the folder holding your load_data.py and models.py"
        )
    if not any((folder / name).is_file() for name in SUBMISSION_FILES):
        raise GradingError(f"{folder} holds neither load_data.py nor models.py")
    try:
        device = resolve_device(args.device)
    except ValueError as error:
        raise GradingError(str(error)) from None
    grading = Grading.from_namespace(args, submission=folder.resolve(), device=device)
    if grading.hints:
        os.environ[HINTS_VARIABLE] = grading.hints  # read by autograder.feedback
    outcomes, finished, out = Outcomes(), threading.Event(), Path(args.out)
    watchdog = threading.Thread(
        target=watch_deadline, args=(grading, outcomes, out, finished), daemon=True
    )
    watchdog.start()
    try:
        run_checks(grading, outcomes, args.verbose)
    finally:
        finished.set()
    if runner.STATE.past_deadline():
        outcomes.stop_unfinished()
    results = results_json(outcomes, time.monotonic() - options.STARTED)
    records = [r for r in outcomes.records.values() if r.status != "not run"]
    print("\n".join(outcomes.header))
    print()
    print(table(records))
    total = sum(r.points for r in records)
    print(f"\nscore: {results['score']:g} / {total:g}   ({results['execution_time']:.0f} s)")
    write_results(out, results)
    print(f"wrote {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from autograder import batch, doctor, gradescope

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
    options.add_to(g)
    g.add_argument("--verbose", action="store_true", help="show pytest's own output (default: off)")
    batch.add_parser(commands)
    gradescope.add_parser(commands)
    doctor.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    from autograder import batch, doctor, gradescope

    args = build_parser().parse_args(argv)
    if args.command in ("grade", "grade-all"):
        try:
            Grading.from_namespace(args).validate()
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    try:
        if args.command == "grade-all":
            return batch.grade_all(args)
        if args.command == "gradescope":
            return gradescope.build(args)
        if args.command == "doctor":
            return doctor.run(args)
        return grade(args)
    except KeyboardInterrupt:
        print("error: interrupted; finished results are kept, rerun to resume", file=sys.stderr)
        return 1
    except GradingError as error:
        print(f"error: could not grade: {error}", file=sys.stderr)
        return 1
