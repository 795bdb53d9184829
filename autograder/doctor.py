"""`python -m autograder doctor`: is this machine ready to grade untrusted code?

One line per check, `ok` / `WARN` / `FAIL`, each that is not ok with its fix: the bubblewrap
sandbox (and `setpriv`, which a root grader needs), the pids and memory cgroups, CUDA inside
the sandbox, the CPU and memory limits in force (and the `--jobs` they give), the Omniglot
cache. Exit 1 when a check FAILs: grade-all and the Gradescope package would refuse to grade
(or grade worse) here.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    """One check's verdict: `ok`, `WARN` (grading works, less well) or `FAIL`."""

    name: str
    verdict: str
    detail: str
    fix: str = ""


def sandbox_findings() -> list[Finding]:
    import os

    from autograder import sandbox

    found = []
    reason = sandbox.why_no_sandbox()
    if reason is None:
        found.append(Finding("sandbox", "ok", "bubblewrap starts a confined Python here"))
    else:
        fix = sandbox.INSTALL_BUBBLEWRAP + "; or grade with --allow-unsandboxed (unsafe)"
        if os.environ.get(sandbox.SANDBOX_SWITCH, "") == "none":
            fix = f"unset {sandbox.SANDBOX_SWITCH}"
        found.append(Finding("sandbox", "FAIL", reason, fix))
    if os.geteuid() == 0:
        if shutil.which("setpriv"):
            found.append(Finding("setpriv", "ok", "drops a root grader's child to uid 65534"))
        else:
            found.append(
                Finding(
                    "setpriv",
                    "FAIL",
                    "not on the PATH: a root grader cannot drop its children's rights",
                    "install util-linux (apt-get install util-linux)",
                )
            )
    return found


def cgroup_findings() -> list[Finding]:
    from autograder import cgroup

    found = []
    cap = cgroup.ProcessCap.create(memory_bytes=256 << 20)
    if cap is None:
        found.append(
            Finding(
                "pids cgroup",
                "WARN",
                "cannot be made here: a fork bomb is stopped only by RLIMIT_NPROC (root is "
                "exempt) and the call timeout",
                "run the grader as root on a host (or a container) with a writable cgroup "
                "file system (/sys/fs/cgroup)",
            )
        )
        found.append(Finding("memory cgroup", "WARN", "cannot be made here (no pids cgroup)"))
        return found
    try:
        found.append(Finding("pids cgroup", "ok", cgroup.describe()))
        if cap.memory is None:
            found.append(
                Finding(
                    "memory cgroup",
                    "WARN",
                    "cannot be made here: a child that uses too much memory is stopped only by "
                    "its address-space limit, or by the kernel killing the grader",
                    "a writable memory controller (cgroup v1 /sys/fs/cgroup/memory, or v2 with "
                    "memory in cgroup.subtree_control)",
                )
            )
        else:
            found.append(Finding("memory cgroup", "ok", f"per child, in {cap.memory.parent}"))
    finally:
        cap.remove()
    return found


def limit_findings() -> list[Finding]:
    from autograder import batch, cgroup, plugin

    cpus, memory = cgroup.cpu_limit(), cgroup.memory_limit()
    gib = f"{memory / (1 << 30):.2f} GiB" if memory else "unknown"
    detail = (
        f"{cpus:g} CPU(s), {gib} of memory; --jobs 0 gives {plugin.auto_jobs('cpu')} training(s) "
        f"at a time for grade, {batch.auto_submissions_at_once()} grading(s) at a time for "
        "grade-all"
    )
    if memory is not None and memory < 700 << 20:
        return [
            Finding(
                "limits",
                "FAIL",
                detail,
                "give the container at least 768 MB (a grading needs about 700 MB)",
            )
        ]
    if cpus < 1:
        return [
            Finding(
                "limits",
                "WARN",
                detail,
                "with under one CPU a full grading of a correct submission takes longer: see "
                "the README's container table for the timeout to set",
            )
        ]
    return [Finding("limits", "ok", detail)]


def cuda_findings() -> list[Finding]:
    from autograder import sandbox
    from autograder.device import PROBE, cuda_available

    if not cuda_available():
        return [Finding("cuda", "ok", "no CUDA GPU visible to the grader: grading runs on CPU")]
    if not sandbox.sandbox_available():
        return [Finding("cuda", "ok", "CUDA visible (no sandbox to check inside)")]
    with tempfile.TemporaryDirectory(prefix="autograder-probe-doctor-") as folder:
        sandbox.hand_over(Path(folder))
        argv = sandbox.bwrap_argv(Path(folder), []) + [sys.executable, "-I", "-c", PROBE]
        try:
            done = subprocess.run(argv, capture_output=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            done = None
    if done is not None and done.returncode == 0:
        return [Finding("cuda", "ok", "CUDA is visible inside the sandbox")]
    return [
        Finding(
            "cuda",
            "WARN",
            "CUDA is visible to the grader but not inside the sandbox: --device auto grades on "
            "the GPU and every submission's child fails",
            "grade with --device cpu, or check that /dev/nvidia* and the driver libraries are "
            "under the system folders the sandbox shows (autograder/sandbox.py)",
        )
    ]


def data_findings() -> list[Finding]:
    from data import cache_dir
    from data.omniglot import CACHE_FILE, _read_cache

    path = cache_dir() / CACHE_FILE
    if _read_cache(path) is not None:
        return [Finding("data cache", "ok", f"{path} is current")]
    return [
        Finding(
            "data cache",
            "FAIL",
            f"{path} is missing or out of date: the first grading would build it (and may "
            "download Omniglot)",
            "python -m data prepare (with OMNIGLOT_SOURCE set to a folder holding the zips "
            "where the machine has no network)",
        )
    ]


def findings() -> list[Finding]:
    return [
        *sandbox_findings(),
        *cgroup_findings(),
        *cuda_findings(),
        *limit_findings(),
        *data_findings(),
    ]


def run(args: argparse.Namespace) -> int:
    found = findings()
    width = max(len(f.name) for f in found)
    for f in found:
        print(f"{f.verdict:<4}  {f.name:<{width}}  {f.detail}")
        if f.fix:
            print(f"{'':<4}  {'':<{width}}  fix: {f.fix}")
    failed = [f.name for f in found if f.verdict == "FAIL"]
    print(f"\n{'not ready: ' + ', '.join(failed) if failed else 'ready to grade'}")
    return 1 if failed else 0


def add_parser(commands) -> None:
    """The `doctor` sub-command."""
    commands.add_parser(
        "doctor",
        help="check that this machine can grade untrusted code safely, with fixes",
        description="Check the sandbox (bubblewrap, setpriv), the pids and memory cgroups, "
        "CUDA inside the sandbox, the CPU and memory limits in force and the Omniglot cache; "
        "print a fix for each problem. Exit 1 when a check fails.",
    )
