"""`python -m check [FOLDER]`: run the public checks of the homework on your code.

    python -m check              # the code in this folder (load_data.py and models.py)
    python -m check my_copy/     # the code in another folder
    python -m check -v           # also the data digests, the isolation and pytest's output

Exit status 0 only when every public check passes. The checks are the grader's public
checks, with the grader's points and messages; the hidden checks (accuracy after training)
run only when your submission is graded.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
if str(PACKAGE) not in sys.path:  # `python path/to/check` as well as `python -m check`
    sys.path.insert(0, str(PACKAGE))

from check.plugin import Outcomes
from check.report import lines
from check.session import ISOLATION, SUBMISSION_FILES

CHECKS = Path(__file__).resolve().parent / "checks"
POINTS = Path(__file__).resolve().parent / "points.json"  # written by `python -m publish`
SETTINGS = json.loads(POINTS.read_text()) if POINTS.is_file() else {}
HINTS_VARIABLE = "AUTOGRADER_HINTS"  # the feedback's hint level, read by check/feedback.py


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m check",
        description="Run the homework's public checks on load_data.py and models.py; exit 0 "
        "only when every public check passes.",
    )
    parser.add_argument(
        "folder",
        nargs="?",
        default=str(PACKAGE),
        help="folder holding load_data.py and models.py (default: this package's folder)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the checks (default: 0)")
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="where the MANN runs (default: cpu)",
    )
    parser.add_argument(
        "--timeout-scale",
        type=float,
        default=1.0,
        help="multiplies every call's timeout, for a slow machine (default: 1.0)",
    )
    parser.add_argument(
        "-k", dest="only", default=None, help="run only the checks whose name matches (pytest -k)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also print the data digests, the isolation and pytest's own output (default: off)",
    )
    return parser


def header(folder: Path, args: argparse.Namespace) -> list[str]:
    first = f"public checks of {folder} (seed {args.seed}, device {args.device})"
    if not args.verbose:
        return [first]
    import torch

    from data import ARCHIVES, EXPECTED

    digests = ", ".join(f"{name}:{EXPECTED[name].digest[:12]}" for name in ARCHIVES)
    return [first, f"torch {torch.__version__}, data digests {digests}", f"isolation: {ISOLATION}"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder = Path(args.folder).resolve()
    missing = [name for name in SUBMISSION_FILES if not (folder / name).is_file()]
    if missing:
        print(f"error: {folder} does not hold {' and '.join(missing)}", file=sys.stderr)
        return 2
    import pytest

    os.environ.setdefault(HINTS_VARIABLE, SETTINGS.get("hints", "steps"))  # the course's level

    pytest_argv = [str(CHECKS), "-c", os.devnull, "--rootdir", str(CHECKS), "-p", "check.plugin"]
    pytest_argv += ["-p", "no:cacheprovider", "--import-mode=importlib", "--tb=no", "-q"]
    pytest_argv += ["--submission", str(folder), "--seed", str(args.seed)]
    pytest_argv += ["--device", args.device, "--timeout-scale", str(args.timeout_scale)]
    if args.only:
        pytest_argv += ["-k", args.only]
    print("\n".join(header(folder, args)), flush=True)
    outcomes = Outcomes()
    captured = io.StringIO()
    quiet = contextlib.nullcontext() if args.verbose else contextlib.redirect_stdout(captured)
    with quiet:
        code = pytest.main(pytest_argv, plugins=[outcomes])
    broken = [r for r in outcomes.records.values() if r.status == "error"]
    if outcomes.collection_errors or broken or code not in (0, 1):
        print(captured.getvalue(), file=sys.stderr)
        reason = outcomes.collection_errors[:1] or [r.message for r in broken[:1]]
        print(f"error: the checks could not run ({(reason or [code])[0]})", file=sys.stderr)
        return 2
    hidden = SETTINGS.get("hidden", 0)
    records = [r for r in outcomes.records.values() if r.status != "not run"]
    print("\n".join(lines(records, hidden)))
    return 0 if records and all(r.status == "passed" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
