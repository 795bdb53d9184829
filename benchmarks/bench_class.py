"""A class at a time: generate a class of submissions, grade it with `grade-all`, measure.

    python -m benchmarks.bench_class --students 120 --jobs 1 --jobs 2
    python -m benchmarks.bench_class --students 120 --grade 12 --grade-args "--public" --jobs 1

The class (`--students`, default 120) is made of variants of the reference, the stubs and every
submission of `tests/submissions/` (correct, buggy and hostile: one that hangs, exits, floods
its output, raises at import), round-robin, each with a comment naming its student so that no
two are byte-identical. `--grade N` grades the first N of them (all by default) once per
`--jobs` value, each time into a fresh results folder, with `grade-all --jobs J` plus
`--grade-args`.

Reported per run: submissions graded, wall seconds, CPU seconds of the whole run (every
grading and child process: the run is in a cgroup that only counts, since the sandboxed
children are reaped inside their PID namespace, out of `getrusage`'s reach), CPU seconds per
submission, the run's peak memory,
throughput (submissions per hour), the load average before and after (the machine may be
shared: load stretches the wall time, not the CPU time), and the time projected for
`--project` submissions (default 300) on `--cores` cores (default 16): CPU seconds per
submission x submissions / cores, which assumes one grading per core keeps each core busy (as
`--jobs` = cores does for CPU-bound gradings). Rows are appended to `--json`.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_container import Box
from benchmarks.report import add_rows_option, append_rows, print_table

REPO = Path(__file__).resolve().parent.parent
SUBMISSION_FILES = ("load_data.py", "models.py")


FIRST = ("hangs_in_forward", "raises_at_import", "accuracy_at_chance")  # then the rest, sorted


def bases() -> list[tuple[str, Path]]:
    """(kind, folder) of every submission a class is made of: the reference, the stubs, a
    stuck, a broken and a chance-level one first (so that `--grade 5` samples each), then
    the rest of `tests/submissions/`."""
    corpus = sorted(p for p in (REPO / "tests" / "submissions").iterdir() if p.is_dir())
    corpus.sort(key=lambda p: FIRST.index(p.name) if p.name in FIRST else len(FIRST))
    return [("correct", REPO / "solutions"), ("stubs", REPO / "assignment")] + [
        (p.name, p) for p in corpus
    ]


def make_class(folder: Path, students: int) -> list[tuple[str, str]]:
    """Write `students` submission folders into `folder`; return (student, kind) of each."""
    made = []
    kinds = bases()
    for i in range(students):
        kind, base = kinds[i % len(kinds)]
        student = f"student-{i:03d}"
        (folder / student).mkdir(parents=True)
        for name in SUBMISSION_FILES:
            if (base / name).is_file():
                text = (base / name).read_text()
                (folder / student / name).write_text(f"# {student} ({kind})\n{text}")
        made.append((student, kind))
    return made


def grade_class(klass: Path, jobs: int, grade_args: list[str], work: Path) -> dict:
    """One `grade-all` over `klass`; its measurements."""
    out = work / f"gradebook-jobs{jobs}.csv"
    command = [sys.executable, "-m", "autograder", "grade-all", str(klass), "--out", str(out)]
    command += ["--jobs", str(jobs), "--device", "cpu", *grade_args]
    load_before = os.getloadavg()[0]
    box = Box(None, None)  # no limits: it only adds up the CPU time of everything in it
    started = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=REPO, preexec_fn=box.join, check=False)
        wall, cpu, peak = time.perf_counter() - started, box.cpu_seconds(), box.peak_bytes()
    finally:
        box.remove()
    if done.returncode != 0:
        raise SystemExit(f"grade-all failed with exit code {done.returncode}")
    with open(out) as file:
        rows = list(csv.DictReader(file))
    graded = len(rows)
    return {
        "jobs": jobs,
        "submissions": graded,
        "not_completed": sum(r["status"] != "graded" for r in rows),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_s_per_submission": round(cpu / graded, 1),
        "peak_mb": round(peak / (1 << 20)) if peak else None,
        "submissions_per_hour": round(3600 * graded / wall, 1),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "grade_args": " ".join(grade_args),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate a class of submissions (variants of the reference, the stubs and "
        "tests/submissions/) and grade it with grade-all at each --jobs; report CPU seconds per "
        "submission, throughput and a projection.",
    )
    parser.add_argument("--students", type=int, default=120, help="class size (default: 120)")
    parser.add_argument(
        "--grade", type=int, help="grade only the first N submissions (default: all)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        action="append",
        help="grade-all --jobs; repeat to compare (default: 1 and 2)",
    )
    parser.add_argument(
        "--grade-args",
        default="",
        help="extra grade-all options, e.g. '--public' or '--deadline 540' (default: none)",
    )
    parser.add_argument(
        "--project", type=int, default=300, help="class size to project for (default: 300)"
    )
    parser.add_argument("--cores", type=int, default=16, help="cores to project for (default: 16)")
    parser.add_argument(
        "--keep", type=Path, help="write the class here and keep it (default: a temporary folder)"
    )
    add_rows_option(parser, "bench_class")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-class-"))
    klass = args.keep or work / "class"
    made = make_class(klass, args.students)
    subset = work / "subset"
    for student, _ in made[: args.grade or len(made)]:
        shutil.copytree(klass / student, subset / student)
    kinds = sorted({kind for _, kind in made})
    graded = len(made[: args.grade or len(made)])
    print(f"a class of {len(made)} ({len(kinds)} kinds) in {klass}; grading {graded}")
    rows = []
    for jobs in args.jobs or [1, 2]:
        row = grade_class(subset, jobs, shlex.split(args.grade_args), work)
        hours = row["cpu_s_per_submission"] * args.project / args.cores / 3600
        row[f"projected_h_{args.project}_on_{args.cores}_cores"] = round(hours, 2)
        rows.append(row)
        print_table([row], list(row))
    append_rows(args.json, rows)
    print(f"wrote {args.json}")
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
