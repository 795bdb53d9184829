"""Cap how many processes a child may start, with a pids cgroup, where the grader may make one.

`RLIMIT_NPROC` cannot stop a fork bomb by itself: the kernel never applies it to root's
processes (also inside a user namespace that maps to root, as bubblewrap's does when the
grader runs as root), and for other users it counts *all* of the user's processes, not the
child's. A pids cgroup counts exactly the child and everything it starts (threads included),
whoever runs it, and lets the grader find and kill every one of them afterwards, even those
that left the child's session.

A grader that cannot create cgroups (not root, a read-only cgroup file system, macOS) gets
`None` from `ProcessCap.create` and relies on `RLIMIT_NPROC` and the call timeout; `describe`
says which is in force. Each cgroup is named after the grader's pid, so one left behind by a
grader that was killed (SIGKILL skips every cleanup) is removed by the next grader that starts.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
import signal
import time
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
MAX_TASKS = 512  # grading the reference peaks at 3 (bwrap, its init, Python): room for workers
NAME = re.compile(r"^autograder-(\d+)-(\d+|probe)$")  # grader pid, child count


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _own_pids_cgroup() -> Path | None:
    """The folder of this process's cgroup in a hierarchy with the pids controller."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:  # "8:pids:/some/path" (v1) or "0::/some/path" (v2)
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            folder = CGROUP_FS / "pids" / path.lstrip("/")
        elif controllers == "" and (CGROUP_FS / "cgroup.controllers").is_file():
            folder = CGROUP_FS / path.lstrip("/")
        else:
            continue
        if folder.is_dir():
            return folder
    return None


@functools.cache
def parent_folder() -> Path | None:
    """Where this grader makes its children's cgroups: a folder in which it can create a
    sub-cgroup that has `pids.max` (checked once; None if it cannot)."""
    folder = _own_pids_cgroup()
    if folder is None:
        return None
    probe = folder / f"autograder-{os.getpid()}-probe"
    try:
        probe.mkdir()
    except OSError:
        return None
    try:
        usable = (probe / "pids.max").is_file() and os.access(probe / "cgroup.procs", os.W_OK)
    finally:
        probe.rmdir()
    return folder if usable else None


_numbers = itertools.count(1)  # next() is atomic: children started from threads get distinct names


class ProcessCap:
    """One child's pids cgroup: at most `MAX_TASKS` processes and threads in it at once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_tasks: int = MAX_TASKS) -> ProcessCap | None:
        """A fresh cgroup capped at `max_tasks`, or None where cgroups cannot be made here."""
        parent = parent_folder()
        if parent is None:
            return None
        remove_stale(parent)
        path = parent / f"autograder-{os.getpid()}-{next(_numbers)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_tasks))
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        return cls(path)

    def join(self) -> None:
        """Move the calling process into the cgroup (a `preexec_fn` step: plain system calls)."""
        fd = os.open(self.path / "cgroup.procs", os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def peak(self) -> int | None:
        """The most tasks that were in it at once (kernels with `pids.peak`), else None."""
        try:
            return int((self.path / "pids.peak").read_text())
        except (OSError, ValueError):
            return None

    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the cgroup until it is empty (none can fork past the cap,
        so this ends), or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left in it and delete it (a cgroup with processes cannot be removed)."""
        self.kill_all()
        for _ in range(100):  # killed processes leave the cgroup once their parents reap them
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


def remove_stale(parent: Path) -> None:
    """Remove the cgroups of graders that are no longer running (killed with SIGKILL)."""
    for path in parent.glob("autograder-*"):
        match = NAME.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            ProcessCap(path).remove()


def describe() -> str:
    """How the number of a child's processes is capped here (for the isolation report)."""
    if parent_folder() is not None:
        return f"a pids cgroup ({MAX_TASKS} processes and threads at most)"
    return "RLIMIT_NPROC only (no pids cgroup can be made here; root is exempt from it)"
