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
    return _own_cgroup("pids")


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

    def __init__(self, path: Path, memory: Path | None = None) -> None:
        self.path = path
        self.memory = memory  # its memory cgroup (the same folder under cgroup v2), or None

    @classmethod
    def create(
        cls, max_tasks: int = MAX_TASKS, memory_bytes: int | None = None
    ) -> ProcessCap | None:
        """A fresh cgroup capped at `max_tasks`, or None where cgroups cannot be made here.

        With `memory_bytes`, the child also gets a memory cgroup with that limit where one can
        be made (`memory` is then its folder; the limit covers real memory, page cache
        included, which the kernel reclaims before it kills)."""
        parent = parent_folder()
        if parent is None:
            return None
        remove_stale(parent)
        name = f"autograder-{os.getpid()}-{next(_numbers)}"
        path = parent / name
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_tasks))
        except OSError:
            try:
                path.rmdir()
            except OSError:
                pass
            return None
        cap = cls(path)
        if memory_bytes is not None:
            cap.memory = _memory_cgroup(name, memory_bytes, path)
        return cap

    def join(self) -> None:
        """Move the calling process into the cgroup(s) (a `preexec_fn` step: plain system
        calls)."""
        folders = [self.path] + ([self.memory] if self.memory not in (None, self.path) else [])
        for folder in folders:
            fd = os.open(folder / "cgroup.procs", os.O_WRONLY)
            try:
                os.write(fd, str(os.getpid()).encode())
            finally:
                os.close(fd)

    def oom_kills(self) -> int:
        """How many of its processes the kernel killed for exceeding the memory limit."""
        if self.memory is None:
            return 0
        for name in ("memory.oom_control", "memory.events"):  # v1, v2
            try:
                for line in (self.memory / name).read_text().splitlines():
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
            except (OSError, ValueError):
                continue
        return 0

    def memory_limit(self) -> int | None:
        """Its memory limit in bytes (None: no memory cgroup)."""
        return self._memory_value("memory.limit_in_bytes", "memory.max")

    def memory_peak(self) -> int | None:
        """The most memory its processes used at once, in bytes (None: no memory cgroup)."""
        return self._memory_value("memory.max_usage_in_bytes", "memory.peak")

    def _memory_value(self, v1: str, v2: str) -> int | None:
        if self.memory is None:
            return None
        for name in (v1, v2):
            value = _read_int(self.memory / name)
            if value is not None:
                return value
        return None

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
        folders = [self.path] + ([self.memory] if self.memory not in (None, self.path) else [])
        for folder in folders:
            _rmdir(folder)


def _rmdir(folder: Path) -> None:
    for _ in range(100):  # killed processes leave the cgroup once their parents reap them
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)


def _memory_cgroup(name: str, limit: int, pids_folder: Path) -> Path | None:
    """A memory cgroup `name` limited to `limit` bytes next to this process's own (cgroup v1),
    or `pids_folder` itself with `memory.max` set (v2); None where neither can be made."""
    if (pids_folder / "memory.max").is_file():  # v2: the memory controller is enabled here
        try:
            (pids_folder / "memory.max").write_text(str(limit))
            (pids_folder / "memory.swap.max").write_text("0")
        except OSError:
            pass
        return pids_folder
    own = _own_cgroup("memory")
    if own is None or own == pids_folder.parent:
        return None
    folder = own / name
    try:
        folder.mkdir()
        (folder / "memory.limit_in_bytes").write_text(str(limit))
        try:
            (folder / "memory.memsw.limit_in_bytes").write_text(str(limit))  # no swapping past it
        except OSError:
            pass
    except OSError:
        _rmdir(folder)
        return None
    return folder


def remove_stale(parent: Path) -> None:
    """Remove the cgroups of graders that are no longer running (killed with SIGKILL)."""
    memory = _own_cgroup("memory")
    for folder in [parent] + ([memory] if memory not in (None, parent) else []):
        for path in folder.glob("autograder-*"):
            match = NAME.match(path.name)
            alive = pid_alive(int(match.group(1))) if match else True
            if match and int(match.group(1)) != os.getpid() and not alive:
                ProcessCap(path).remove()


def describe() -> str:
    """How the number of a child's processes is capped here (for the isolation report)."""
    if parent_folder() is not None:
        memory = " and a memory cgroup" if _own_cgroup("memory") is not None else ""
        return f"a pids cgroup ({MAX_TASKS} processes and threads at most){memory}"
    return "RLIMIT_NPROC only (no pids cgroup can be made here; root is exempt from it)"


# -- the limits in force (for sizing --jobs) ------------------------------------------------


def _own_cgroup(controller: str) -> Path | None:
    """This process's cgroup folder for `controller` (v1 hierarchy, or the v2 unified one)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            folder = CGROUP_FS / controller / path.lstrip("/")
            if not folder.is_dir() and controller == "cpu":
                folder = CGROUP_FS / "cpu,cpuacct" / path.lstrip("/")
        elif controllers == "" and (CGROUP_FS / "cgroup.controllers").is_file():
            folder = CGROUP_FS / path.lstrip("/")
        else:
            continue
        if folder.is_dir():
            return folder
    return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return None if text == "max" else int(text)


def cpu_limit() -> float:
    """The CPUs this process may use: the cgroup's CPU quota (v1 `cpu.cfs_quota_us` /
    `cpu.cfs_period_us`, v2 `cpu.max`, the tightest of this cgroup and its parents), and the
    CPUs it may run on, whichever is smaller."""
    cpus = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    folder = _own_cgroup("cpu")
    while folder is not None and CGROUP_FS in folder.parents:
        quota = _read_int(folder / "cpu.cfs_quota_us")
        period = _read_int(folder / "cpu.cfs_period_us")
        if quota is None and (folder / "cpu.max").is_file():
            parts = (folder / "cpu.max").read_text().split()
            quota, period = (None, None) if parts[0] == "max" else (int(parts[0]), int(parts[1]))
        if quota is not None and quota > 0 and period:
            cpus = min(cpus, quota / period)
        folder = folder.parent
    return cpus


def memory_limit() -> int | None:
    """Bytes of memory this process and its children may use: the tightest memory cgroup
    limit of this cgroup and its parents (v1 `memory.limit_in_bytes`, v2 `memory.max`), or
    the machine's memory; None where neither can be read."""
    limits = []
    folder = _own_cgroup("memory")
    while folder is not None and CGROUP_FS in folder.parents:
        for name in ("memory.limit_in_bytes", "memory.max"):
            value = _read_int(folder / name)
            if value is not None and value < 1 << 60:  # v1 writes "no limit" as ~2^63
                limits.append(value)
        folder = folder.parent
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                limits.append(int(line.split()[1]) * 1024)
    except OSError:
        pass
    return min(limits) if limits else None
