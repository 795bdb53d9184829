"""Command line: `python -m data prepare` builds the cache, `python -m data verify ZIP` checks a zip
(either image archive, or Lake's `all_runs.zip`).

Errors in the data (no network, a missing, corrupt or wrong archive) print one `error:` paragraph
on stderr and exit with status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .archives import ARCHIVES, LAKE_RUNS, OmniglotDataError, verify_archive
from .omniglot import CACHE_FILE, prepare


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data",
        description="Acquire, verify and cache the Omniglot archives for the meta-learning kit.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prep = commands.add_parser(
        "prepare",
        help="acquire and verify both archives, then build the processed cache",
        description="Acquire and verify both archives, then build the processed cache.",
    )
    prep.add_argument(
        "--source",
        metavar="DIR",
        default=os.environ.get("OMNIGLOT_SOURCE") or None,
        help="folder holding images_background.zip and images_evaluation.zip; unset means "
        "download them (default: $OMNIGLOT_SOURCE)",
    )
    prep.add_argument(
        "--cache",
        metavar="DIR",
        default=None,
        help=f"cache folder for the zips and {CACHE_FILE} "
        "(default: $OMNIGLOT_CACHE or <kit root>/cache/omniglot)",
    )
    prep.add_argument(
        "--no-progress",
        action="store_true",
        help="hide the progress bars (default: shown)",
    )

    ver = commands.add_parser(
        "verify",
        help="check that a zip is an intact Omniglot archive and print its digest",
        description="Check that a zip is an intact Omniglot archive and print its content digest.",
    )
    ver.add_argument("path", metavar="PATH", help="the zip to check (default: required)")
    ver.add_argument(
        "--name",
        choices=(*ARCHIVES, LAKE_RUNS),
        default=None,
        help="which archive PATH should be (default: taken from the file name)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "prepare":
            path, data, seconds = prepare(
                args.cache, source=args.source, progress=not args.no_progress
            )
            print(f"cache: {path}")
            print(
                f"{len(data.names)} characters, {data.images.shape[0] * data.images.shape[1]} "
                f"images {list(data.images.shape)}, digests OK, {seconds:.1f} s"
            )
        else:
            name = args.name or Path(args.path).name.removesuffix(".zip")
            if name not in (*ARCHIVES, LAKE_RUNS):
                raise OmniglotDataError(
                    f"Cannot tell which archive {args.path} should be from its file name. Pass "
                    f"--name {ARCHIVES[0]}, --name {ARCHIVES[1]} or --name {LAKE_RUNS}."
                )
            digest = verify_archive(args.path, name)
            kind = "sha256" if name == LAKE_RUNS else "content digest"
            print(f"OK {args.path}: {name}.zip, {kind} {digest}")
    except OmniglotDataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing half-written was left in the cache.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
