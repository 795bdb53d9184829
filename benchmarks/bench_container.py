"""A full grading inside a container-sized box: wall time, CPU time, peak memory, kills.

    python -m benchmarks.bench_container solutions --box 768M:0.5 --box 1G:1 --box 2G:2
    python -m benchmarks.bench_container tests/submissions/accuracy_at_chance --box 768M:0.5 \\
        --grade-args "--deadline 540"

Each `--box MEMORY:CPUS` runs `python -m autograder grade SUBMISSION --device cpu` (plus
`--grade-args`) in a fresh cgroup with that memory limit (swap included where the kernel
allows) and that CPU quota, like a Gradescope container (about 768 MB and half a vCPU by
default). cgroup v1 (`/sys/fs/cgroup/memory` and `/sys/fs/cgroup/cpu`) and v2 (one folder with
`memory.max` and `cpu.max`) are both handled; where neither can be made (not root, a read-only
cgroup file system) the script says so and exits 2.

Reported per box: wall seconds, CPU seconds (user + system of the whole box), the box's peak
memory, how many processes the kernel killed for memory, whether results.json was written, its
score, and the load average before and after (the machine may be shared: a busy machine makes
the wall time longer, not the CPU time). The rows are appended to `--json`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from autograder import cgroup
from benchmarks.report import add_rows_option, append_rows, print_table

REPO = Path(__file__).resolve().parent.parent
PERIOD_US = 100_000  # cpu.cfs_period_us: the quota is CPUs x this


@dataclass
class Row:
    submission: str
    memory_mb: int
    cpus: float
    wall_s: float
    cpu_s: float
    peak_mb: float | None
    oom_kills: int
    results_written: bool
    score: float | None
    max_score: float | None
    load_before: float
    load_after: float


def parse_size(text: str) -> int:
    """`768M`, `1G`, `2048M` -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


class Box:
    """A memory + CPU cgroup (v1: a folder in each hierarchy; v2: one folder)."""

    def __init__(self, memory: int | None, cpus: float | None) -> None:
        """Limits of `memory` bytes and `cpus` CPUs; None: no limit (only accounting)."""
        name = f"bench-container-{os.getpid()}-{time.monotonic_ns()}"
        v2 = (cgroup.CGROUP_FS / "cgroup.controllers").is_file()
        if v2:
            own = cgroup._own_cgroup("memory")
            if own is None:
                raise OSError("no cgroup v2 folder of this process")
            self.folders = [own / name]
        else:
            memory_own, cpu_own = cgroup._own_cgroup("memory"), cgroup._own_cgroup("cpu")
            if memory_own is None or cpu_own is None:
                raise OSError("no cgroup v1 memory and cpu hierarchies")
            self.folders = [memory_own / name, cpu_own / name]
            accounting = cgroup._own_cgroup("cpuacct")
            if accounting is not None and accounting != cpu_own:  # its own hierarchy here
                self.folders.append(accounting / name)
        for folder in self.folders:
            folder.mkdir()
        quota = int(cpus * PERIOD_US) if cpus else None
        if v2:
            folder = self.folders[0]
            if memory:
                (folder / "memory.max").write_text(str(memory))
                _try_write(folder / "memory.swap.max", "0")
            if quota:
                (folder / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            self.memory_folder = self.cpu_folder = self.accounting_folder = folder
        else:
            self.memory_folder, self.cpu_folder = self.folders[:2]
            self.accounting_folder = self.folders[-1]
            if memory:
                (self.memory_folder / "memory.limit_in_bytes").write_text(str(memory))
                _try_write(self.memory_folder / "memory.memsw.limit_in_bytes", str(memory))
            if quota:
                (self.cpu_folder / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.cpu_folder / "cpu.cfs_quota_us").write_text(str(quota))
        self.v2 = v2

    def join(self) -> None:
        """`preexec_fn`: put the calling process (and so all it starts) in the box."""
        for folder in self.folders:
            with open(folder / "cgroup.procs", "w") as procs:
                procs.write(str(os.getpid()))

    def peak_bytes(self) -> int | None:
        for name in ("memory.max_usage_in_bytes", "memory.peak"):
            try:
                return int((self.memory_folder / name).read_text())
            except (OSError, ValueError):
                continue
        return None

    def cpu_seconds(self) -> float | None:
        """CPU time used by everything in the box (v1 `cpuacct.usage`, v2 `cpu.stat`)."""
        try:
            if self.v2:
                for line in (self.cpu_folder / "cpu.stat").read_text().splitlines():
                    if line.startswith("usage_usec "):
                        return int(line.split()[1]) / 1e6
            return int((self.accounting_folder / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            return None

    def oom_kills(self) -> int:
        for name in ("memory.oom_control", "memory.events"):
            try:
                for line in (self.memory_folder / name).read_text().splitlines():
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
            except OSError:
                continue
        return 0

    def remove(self) -> None:
        for folder in self.folders:
            cgroup.ProcessCap(folder).remove()


def _try_write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError:
        pass  # no swap accounting on this kernel: the memory limit alone


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_box(submission: Path, memory: int, cpus: float, grade_args: list[str]) -> Row:
    """One full grading of `submission` in a fresh box."""
    box = Box(memory, cpus)
    out = Path(tempfile.mkdtemp(prefix="bench-container-")) / "results.json"
    command = [sys.executable, "-m", "autograder", "grade", str(submission), "--out", str(out)]
    command += ["--device", "cpu", *grade_args]
    load_before, cpu_before = os.getloadavg()[0], children_cpu_seconds()
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=REPO,
            preexec_fn=box.join,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        peak, kills, cpu = box.peak_bytes(), box.oom_kills(), box.cpu_seconds()
    finally:
        box.remove()
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    results = json.loads(out.read_text()) if out.is_file() else None
    return Row(
        submission=str(submission),
        memory_mb=memory >> 20,
        cpus=cpus,
        wall_s=round(wall, 1),
        cpu_s=round(cpu if cpu is not None else children_cpu_seconds() - cpu_before, 1),
        peak_mb=round(peak / (1 << 20), 1) if peak else None,
        oom_kills=kills,
        results_written=results is not None,
        score=results["score"] if results else None,
        max_score=sum(t["max_score"] for t in results["tests"]) if results else None,
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a full grading of SUBMISSION in cgroup boxes of the given memory and "
        "CPU limits; report wall time, CPU time, peak memory and kills.",
    )
    parser.add_argument("submission", type=Path, help="folder with load_data.py and models.py")
    parser.add_argument(
        "--box",
        action="append",
        metavar="MEMORY:CPUS",
        help="a box, e.g. 768M:0.5; repeat for several (default: 768M:0.5, 1G:1, 2G:2)",
    )
    parser.add_argument(
        "--grade-args",
        default="",
        help="extra options of `python -m autograder grade`, e.g. '--deadline 540' (default: none)",
    )
    add_rows_option(parser, "bench_container")
    args = parser.parse_args(argv)
    boxes = args.box or ["768M:0.5", "1G:1", "2G:2"]
    rows = []
    for spec in boxes:
        memory, cpus = spec.split(":")
        try:
            row = run_box(
                args.submission.resolve(),
                parse_size(memory),
                float(cpus),
                shlex.split(args.grade_args),
            )
        except OSError as error:
            print(
                f"skipped: no cgroup box can be made here ({error}); run as root on a machine "
                "with a writable cgroup v1 or v2 file system",
                file=sys.stderr,
            )
            return 2
        rows.append(asdict(row))
        print_table([rows[-1]], list(rows[-1]))
    append_rows(args.json, rows)
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
