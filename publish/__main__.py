"""`python -m publish`: regenerate every generated file; `--check`: exit 1 when one is stale.

    python -m publish                   # notebooks, assignment/, handout/, dist/blackbox-student*
    python -m publish --check           # write nothing; diff and exit 1 if anything is stale
    python -m publish --hints outline   # student files with the outline only, no code hints

The hint level defaults to `[tool.publish] hints` in `pyproject.toml` (a course that hands out
the outline sets it there once), else `steps`.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from kit.submission import REPO_ROOT
from publish import hints, package
from publish.pipeline import Settings, configured_level, generate, stale, write


def build_parser(default_level: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m publish",
        description="Generate the kit's notebooks, the student release assignment/, the "
        "handout and the student package dist/blackbox-student(.zip) from their sources "
        "(solutions/, publish/notebooks/, publish/templates/, the grader's checks).",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; print a diff and exit 1 if a generated file is stale (default: off)",
    )
    parser.add_argument(
        "--hints",
        choices=hints.LEVELS,
        default=default_level,
        help="steps: numbered steps with code-level hints; outline: the contract and shapes "
        f"only (default: {default_level}, from pyproject.toml's [tool.publish])",
    )
    return parser


def main(argv: list[str] | None = None, root: Path = REPO_ROOT) -> int:
    try:
        default_level = configured_level(root)
    except (ValueError, tomllib.TOMLDecodeError) as error:
        print(f"error: pyproject.toml [tool.publish]: {error}", file=sys.stderr)
        return 1
    args = build_parser(default_level).parse_args(argv)
    try:
        outputs = generate(Settings(hints=args.hints, root=root), report=print)
    except (RuntimeError, ValueError, FileNotFoundError) as error:
        first, _, details = str(error).partition("\n")
        if details:
            print(details)
        print(f"error: {first}", file=sys.stderr)
        return 1
    if args.check:
        diffs = stale(outputs, root)
        for diff in diffs.values():
            print(diff, end="" if diff.endswith("\n") else "\n")
        if diffs:
            names = ", ".join(list(diffs)[:6]) + (", ..." if len(diffs) > 6 else "")
            rerun = "python -m publish" + (
                f" --hints {args.hints}" if args.hints != default_level else ""
            )
            print(
                f"error: {len(diffs)} generated file(s) are stale ({names}): run {rerun}",
                file=sys.stderr,
            )
            return 1
        if not (root / package.FOLDER).is_dir():
            print(f"{package.FOLDER}/ is not built (python -m publish builds it): not compared")
        print(f"the generated files are up to date (hints: {args.hints})")
        return 0
    changed = write(outputs, root)
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(changed)} changed, {len(outputs)} generated files in all (hints: {args.hints})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
