"""`python -m autograder grade-all SUBMISSIONS_DIR`: grade a whole class, resumably.

Every sub-folder of SUBMISSIONS_DIR is one submission, graded by its own
`python -m autograder grade` process (its own session, so a wall-clock timeout kills the
grading and everything it started): a submission that crashes, hangs or is killed costs only
itself. Each grading writes `<results>/<name>/results.json` atomically (the grader's
`autograder.results`); a grading that did not complete gets a results.json of its own, score 0, that
says why. A rerun skips every submission that already has a results.json, so interrupting and
rerunning loses nothing and regrades nothing; the gradebook CSV is rebuilt from the
results.json files at the end of every run.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from autograder import options
from autograder.options import Grading
from autograder.results import GradingError, failure_results, status_of, write_atomic
from autograder.sandbox import die_with_parent

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS_FILE = "settings.json"  # the grading options the results folder was made with
GRADEBOOK_FIELDS = ("submission", "score", "max_score", "status", "failed_checks", "seconds")
DEADLINE_SLACK = 60.0  # seconds past --deadline before a grading is killed as stuck


class Running:
    """The gradings in progress, so that an interrupted grade-all stops them and writes nothing
    for them (they are graded again on the rerun)."""

    def __init__(self) -> None:
        self.lock, self.processes, self.stopping = threading.Lock(), set(), threading.Event()

    def stop_all(self) -> None:
        self.stopping.set()
        with self.lock:
            for process in self.processes:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


RUNNING = Running()


@dataclass(frozen=True)
class Entry:
    """One gradebook row, read back from a submission's results.json."""

    submission: str
    score: float
    max_score: float
    status: str  # graded | grader error | timeout
    failed_checks: int
    seconds: float
    checks: tuple[tuple[str, float], ...] = ()  # (check name, score) of every check


def submissions_in(folder: Path) -> list[Path]:
    """The sub-folders of `folder`, sorted by name (hidden ones left out)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def grade_options(grading: Grading) -> list[str]:
    """The `grade` options every submission is graded with (part of the resume key): the
    class's options, one training at a time (the class runs --jobs gradings at once)."""
    return grading.with_(jobs=1, allow_unsandboxed=False).argv()


def grade_one(folder: Path, out: Path, options: list[str], timeout: float) -> None:
    """Grade one submission in its own process session; always leave `out` written."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out)]
    log = out.parent / "grader.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            command + options,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a timeout kills the grading and all it started
            preexec_fn=die_with_parent,  # noqa: PLW1509 - and so does killing grade-all
        )
        with RUNNING.lock:
            RUNNING.processes.add(process)
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            write_atomic(
                out,
                json.dumps(
                    failure_results(
                        "timeout",
                        f"the grading did not finish within {timeout:.0f} s and was stopped",
                        time.perf_counter() - started,
                    )
                ),
            )
            return
        finally:
            with RUNNING.lock:
                RUNNING.processes.discard(process)
    if RUNNING.stopping.is_set():
        return  # interrupted: no results.json, so the rerun grades it
    if code != 0 or not out.is_file():
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        reason = lines[-1] if lines else f"the grader exited with code {code}"
        write_atomic(
            out,
            json.dumps(failure_results("grader error", reason, time.perf_counter() - started)),
        )


def read_entry(name: str, results_file: Path) -> Entry:
    results = json.loads(results_file.read_text())
    tests = results.get("tests", [])
    return Entry(
        submission=name,
        score=float(results["score"]),
        max_score=float(sum(t["max_score"] for t in tests)),
        status=status_of(results),
        failed_checks=sum(t["status"] != "passed" for t in tests),
        seconds=float(results.get("execution_time", 0.0)),
        checks=tuple((t["name"], float(t["score"])) for t in tests),
    )


def gradebook_csv(entries: list[Entry]) -> str:
    """One row per submission: the `GRADEBOOK_FIELDS`, then one column per check (its score;
    empty where that submission's grading did not run it)."""
    columns = list(dict.fromkeys(name for e in entries for name, _ in e.checks))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow((*GRADEBOOK_FIELDS, *columns))
    for e in entries:
        scores = dict(e.checks)
        writer.writerow(
            (e.submission, f"{e.score:g}", f"{e.max_score:g}", e.status, e.failed_checks, e.seconds)
            + tuple(f"{scores[c]:g}" if c in scores else "" for c in columns)
        )
    return text.getvalue()


def summary(entries: list[Entry], skipped: int) -> str:
    graded = [e for e in entries if e.status == "graded"]
    lines = [f"{len(entries)} submissions: {len(graded)} graded, {skipped} from an earlier run"]
    if graded:
        scores = sorted(e.score for e in graded)
        top = max(e.max_score for e in graded)
        mean = sum(scores) / len(scores)
        lines.append(
            f"scores out of {top:g}: mean {mean:.1f}, median {scores[len(scores) // 2]:g}, "
            f"full marks {sum(e.score == e.max_score for e in graded)}, zero "
            f"{sum(e.score == 0 for e in graded)}"
        )
    failures = [e for e in entries if e.status != "graded"]
    for e in failures:
        lines.append(f"  {e.status}: {e.submission} (score 0)")
    return "\n".join(lines)


def check_settings(results: Path, options: list[str], timeout: float) -> None:
    """Resume only a results folder made with the same options (else scores would mix)."""
    path = results / SETTINGS_FILE
    settings = {"grade_options": options, "timeout": timeout}
    if path.is_file():
        if json.loads(path.read_text()) != settings:
            raise GradingError(
                f"{results} holds results graded with other options ({path}); pass another "
                "--results folder, or delete it to regrade everything"
            )
    else:
        write_atomic(path, json.dumps(settings, indent=2) + "\n")


def auto_submissions_at_once() -> int:
    """Gradings at a time where --jobs is 0: one per CPU of the limits in force (cgroup quota
    included), no more than the memory holds (a grading with one training at a time needs
    about `GRADING_BYTES`), at least one."""
    from autograder import cgroup

    cpus = int(cgroup.cpu_limit())
    memory = cgroup.memory_limit()
    return max(1, min(cpus, cpus if memory is None else memory // GRADING_BYTES))


GRADING_BYTES = 1 << 30  # one grading (grader process + one training child), with room


def grade_all(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from autograder.sandbox import require_sandbox

    folder = Path(args.submissions)
    if not folder.is_dir():
        raise GradingError(f"{folder} is not a folder of submission folders")
    require_sandbox(args.allow_unsandboxed)
    grading = Grading.from_namespace(args)
    jobs = grading.jobs or auto_submissions_at_once()
    timeout = args.timeout or (
        grading.deadline + DEADLINE_SLACK if grading.deadline else DEFAULT_TIMEOUT
    )
    out = Path(args.out)
    results = Path(args.results) if args.results else out.with_name(out.stem + "_results")
    grade_argv = grade_options(grading)
    results.mkdir(parents=True, exist_ok=True)
    check_settings(results, grade_argv, timeout)
    submissions = submissions_in(folder)
    if not submissions:
        raise GradingError(f"{folder} holds no submission folders")
    todo = [s for s in submissions if not (results / s.name / "results.json").is_file()]
    for submission in todo:
        (results / submission.name).mkdir(exist_ok=True)
    print(f"grading {len(todo)} of {len(submissions)} submissions, {jobs} at a time")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(
                grade_one,
                s.resolve(),
                (results / s.name / "results.json").resolve(),
                grade_argv,
                timeout,
            ): s
            for s in todo
        }
        # tqdm's remaining-time estimate is from the rate of this run (resumed ones excluded)
        bar = tqdm(total=len(submissions), initial=len(submissions) - len(todo), unit="sub")
        try:
            for future in as_completed(futures):
                future.result()
                bar.set_postfix_str(futures[future].name)
                bar.update()
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            RUNNING.stop_all()
            raise
        finally:
            bar.close()
    entries = [read_entry(s.name, results / s.name / "results.json") for s in submissions]
    write_atomic(out, gradebook_csv(entries))
    print(summary(entries, len(submissions) - len(todo)))
    print(f"wrote {out} (per-submission results in {results}/)")
    return 0


DEFAULT_TIMEOUT = 3600.0  # seconds one grading may take where neither --timeout nor --deadline


def add_parser(commands) -> None:
    """The `grade-all` sub-command."""
    g = commands.add_parser(
        "grade-all",
        help="grade every submission folder of a class and write a gradebook CSV",
        description="Grade every sub-folder of SUBMISSIONS_DIR in its own process, keep each "
        "results.json, and write a gradebook CSV (one row per submission, one column per "
        "check). Rerunning resumes: submissions with a results.json are not regraded. Refuses "
        "to grade where the bubblewrap sandbox cannot start, unless --allow-unsandboxed.",
    )
    g.add_argument("submissions", metavar="SUBMISSIONS_DIR", help="folder of submission folders")
    g.add_argument(
        "--out", default="gradebook.csv", help="the gradebook to write (default: gradebook.csv)"
    )
    g.add_argument(
        "--results",
        metavar="DIR",
        help="folder of the per-submission results.json files (default: <out stem>_results "
        "next to the gradebook)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds one whole grading may take before it is killed and scored 0 (default: "
        f"--deadline + {DEADLINE_SLACK:.0f}, else {DEFAULT_TIMEOUT:.0f})",
    )
    options.add_to(g)
