"""The Gradescope package: `python -m autograder gradescope --out autograder.zip` builds it.

The zip holds the grader's code (`autograder/` with its hidden checks, `kit/`, `data/`), the
pinned `requirements.txt`, `setup.sh` (Gradescope runs it once when it builds the image: a
venv with the pinned requirements, bubblewrap for the sandbox, the Omniglot cache) and
`run_autograder` (run for every submission). `run_autograder` calls
`python -m autograder.gradescope` (`main` below), which grades `<root>/submission` with
`batch.grade_one` (its own process session and timeout) and writes
`<root>/results/results.json`; if even Python cannot start, the shell script writes a
results.json itself. So every submission gets a results.json, even when everything fails.

Paths are configurable for tests: `AUTOGRADER_ROOT` (default `/autograder`), `AUTOGRADER_PYTHON`
(default the venv that setup.sh makes) and `AUTOGRADER_ARGS` (extra `grade` options).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import sys
import zipfile
from pathlib import Path

from autograder.batch import grade_one
from autograder.results import GradingError, failure_results, write_atomic, write_results
from kit.submission import SUBMISSION_FILES

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("autograder", "kit", "data")  # the grader's code; no solutions, no tests
DEADLINE = 480.0  # seconds: the grading's own deadline, below Gradescope's default 10 minutes
DEADLINE_SLACK = 60.0  # then the grading is killed (still under 10 minutes)
NO_START = failure_results(
    "grader error", "the autograder could not start; please tell the course staff.", 0.0
)

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, in /autograder/source, when it builds the image.
set -euo pipefail
cd /autograder/source
apt-get update
apt-get install -y python3 python3-venv python3-pip bubblewrap
python3 -m venv .venv
# The CPU build of the pinned torch first (PyPI's default build is the large CUDA one).
TORCH=$(grep -E '^torch==' requirements.txt)
.venv/bin/pip install --disable-pip-version-check "$TORCH" --index-url https://download.pytorch.org/whl/cpu
.venv/bin/pip install --disable-pip-version-check -r requirements.txt
# Download, verify and cache Omniglot now: grading runs without waiting for the network.
.venv/bin/python -m data prepare --no-progress
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for every submission. It always leaves results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/source/.venv/bin/python}"
cd "$ROOT/source" || exit 0
"$PYTHON" -m autograder.gradescope --root "$ROOT" OPTIONS
status=$?  # 1: the grader refused or could not grade (the results say why)
if [ ! -s "$ROOT/results/results.json" ]; then  # Python itself could not run
  mkdir -p "$ROOT/results"
  printf '%s\n' 'NO_START' > "$ROOT/results/results.json"
fi
exit "$status"
""".replace("NO_START", json.dumps(NO_START))


def package_files() -> list[tuple[Path, str]]:
    """(file, name in the zip) of every file the grader needs; no caches, no bytecode."""
    files = [(REPO_ROOT / "requirements.txt", "requirements.txt")]
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                files.append((path, path.relative_to(REPO_ROOT).as_posix()))
    return files


def build_zip(out: Path, deadline: float = DEADLINE, allow_unsandboxed: bool = False) -> list[str]:
    """Write the Gradescope zip atomically; return the names it holds. `deadline` and
    `allow_unsandboxed` are written into its run_autograder."""
    buffer = io.BytesIO()
    names = []
    options = f"--deadline {deadline:g}" + (" --allow-unsandboxed" if allow_unsandboxed else "")
    run_autograder = RUN_AUTOGRADER.replace("OPTIONS", options)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for text, name in ((SETUP_SH, "setup.sh"), (run_autograder, "run_autograder")):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16  # executable: Gradescope runs both directly
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
            names.append(name)
        for path, name in package_files():
            archive.write(path, name)
            names.append(name)
    write_atomic(out, buffer.getvalue())
    return names


def find_submission(folder: Path) -> Path:
    """The folder holding the student's files: the upload itself, or the one folder in it that
    holds them (students often upload a zip of a folder)."""
    if any((folder / name).is_file() for name in SUBMISSION_FILES):
        return folder
    for name in SUBMISSION_FILES:
        found = sorted(p for p in folder.rglob(name) if "__MACOSX" not in p.parts)
        if found:
            return found[0].parent
    return folder  # the grader reports what is missing


def run(root: Path, extra: list[str], deadline: float, allow_unsandboxed: bool = False) -> None:
    """Grade `root/submission` and write `root/results/results.json`, whatever happens: with
    `deadline` (the grading stops there, keeping what it graded) and killed `DEADLINE_SLACK`
    seconds later. Fails closed: without a working sandbox, nothing is graded (the results
    say why) unless `allow_unsandboxed`."""
    from autograder.sandbox import require_sandbox

    out = root / "results" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        require_sandbox(allow_unsandboxed)
        submission = find_submission(root / "submission")
        argv = ["--device", "auto", "--deadline", f"{deadline:g}", *extra]
        grade_one(submission, out, argv, deadline + DEADLINE_SLACK)
        results = json.loads(out.read_text())
        if set(results) >= {"score", "tests"}:
            return
        raise ValueError("results.json lacks score or tests")
    except Exception as error:  # whatever broke, the student gets a results.json
        write_results(out, failure_results("grader error", f"{error}", 0.0))
        if isinstance(error, GradingError):
            raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of `run_autograder` (internal): `python -m autograder.gradescope`."""
    parser = argparse.ArgumentParser(
        description="Grade a Gradescope submission (run by run_autograder).",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path(os.environ.get("AUTOGRADER_ROOT", "/autograder")),
        help="the Gradescope folder holding submission/ and results/ (default: /autograder)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=float(os.environ.get("AUTOGRADER_DEADLINE", DEADLINE)),
        help="seconds after which the grading stops and keeps what it graded; set it below "
        f"the assignment's Gradescope timeout (default: AUTOGRADER_DEADLINE, else {DEADLINE:.0f})",
    )
    parser.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        default=os.environ.get("AUTOGRADER_ALLOW_UNSANDBOXED", "") == "1",
        help="grade even where the bubblewrap sandbox cannot start (default: refuse; "
        "AUTOGRADER_ALLOW_UNSANDBOXED=1 sets it)",
    )
    args = parser.parse_args(argv)
    extra = shlex.split(os.environ.get("AUTOGRADER_ARGS", ""))
    try:
        run(args.root, extra, args.deadline, args.allow_unsandboxed)
    except GradingError as error:
        print(f"error: could not grade: {error}", file=sys.stderr)
        return 1
    return 0


def build(args: argparse.Namespace) -> int:
    """`python -m autograder gradescope`: build the zip."""
    out = Path(args.out)
    if out.suffix != ".zip":
        raise GradingError(f"--out {out} must end in .zip")
    names = build_zip(out, args.deadline, args.allow_unsandboxed)
    print(f"wrote {out} ({len(names)} files, {out.stat().st_size // 1024} KiB)")
    return 0


def add_parser(commands) -> None:
    """The `gradescope` sub-command."""
    g = commands.add_parser(
        "gradescope",
        help="build the Gradescope autograder zip",
        description="Build the Gradescope autograder zip: setup.sh, run_autograder, the "
        "grader's code and the pinned requirements. See the README's grading section for the "
        "Gradescope settings.",
    )
    g.add_argument(
        "--out", default="autograder.zip", help="the zip to write (default: autograder.zip)"
    )
    g.add_argument(
        "--deadline",
        type=float,
        default=DEADLINE,
        help="seconds after which each grading stops and keeps what it graded; it is killed "
        f"{DEADLINE_SLACK:.0f} s later, so set it at least that far below the assignment's "
        f"Gradescope timeout (default: {DEADLINE:.0f}, for the default 10 minutes)",
    )
    g.add_argument(
        "--allow-unsandboxed",
        action="store_true",
        help="grade even where bubblewrap cannot start in the Gradescope container (the "
        "container is then the only isolation between submissions and the grader's hidden "
        "checks) (default: refuse, each submission's results say why)",
    )


if __name__ == "__main__":
    sys.exit(main())
