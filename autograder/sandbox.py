"""The sandbox: how a child process that runs untrusted code is started, confined and killed.

`run_child` is the ONE place that decides it. Where bubblewrap works (`sandbox_available`),
the child runs in the sandbox of `bwrap_argv` (no network, own PID/IPC namespaces, only the
system folders, the Python installation and what the grader names visible, an unprivileged
user); everywhere it gets its own session, resource limits (`ChildLimits`), a clean
environment, a fresh working folder, and its own pids and memory cgroups where the grader can
make them (`autograder.cgroup`). `kill_child` ends it and everything it started.

The child session on top of this (requests, replies, timeouts) is `autograder.runner`.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from autograder import cgroup

RLIMIT_MODE = "subprocess: new session, resource limits, clean environment, fresh working folder"
NOBODY = 65534  # the uid and gid a sandboxed child runs as


def sandbox_mode() -> str:
    """The sandbox's description for the report (it depends on whether the grader is root)."""
    if os.geteuid() == 0:
        user = f"as uid {NOBODY}, a real unprivileged user (the grader is root), no capabilities"
    else:
        user = f"user namespace (uid {NOBODY} inside, the grader's user outside), no capabilities"
    return (
        f"bubblewrap sandbox: {user}, no network, own PID and IPC namespaces, only the system "
        "folders and the Python installation visible (read-only), a fresh /tmp, writable only "
        "its working folder; plus " + RLIMIT_MODE
    )


SANDBOX_SWITCH = "AUTOGRADER_SANDBOX"  # "none": the plain rlimit subprocess even with bwrap
SYSTEM_FOLDERS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: only the call runs after fork
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` part: the kernel kills this process (SIGKILL) when its parent dies, so a
    grader killed midway leaves no child running (a batch rerun must not race an orphan)."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass(frozen=True)
class ChildLimits:
    """Resource limits of a child process (see `run_child`)."""

    cpu_seconds: int = 3600  # a whole grading of the reference uses a few minutes
    # A grading child maps ~0.8 GiB (measured: 760 MiB virtual while training); None for CUDA,
    # whose driver maps far more address space than it uses.
    address_space_bytes: int | None = 4 << 30
    file_size_bytes: int = 256 << 20  # largest file it may write (predictions are kilobytes)
    processes: int = 4096  # threads count too; generous, it only stops fork bombs
    open_files: int = 1024  # file descriptors (DataLoader workers share memory through some)
    # Real memory (its memory cgroup, where one can be made): see `child_memory_bytes`.
    memory_bytes: int | None = None


# The grader while children run: about 100 MB since it imports no torch and holds the splits
# as uint8 (98 MB peak through its imports and data path); the rest is headroom for the page
# cache of the children's memory-mapped meta-train file, which a memory cgroup also counts.
GRADER_RESERVE = 320 << 20
MEMORY_PER_CHILD = 2 << 30  # at most, however much memory the machine has


def child_memory_bytes(children: int) -> int:
    """The memory limit of each of `children` children running at once: what the limits in
    force (`cgroup.memory_limit`) leave after the grader's own, shared out, at most
    `MEMORY_PER_CHILD` and at least 256 MiB."""
    total = cgroup.memory_limit() or (8 << 30)
    share = (total - GRADER_RESERVE) // max(1, children)
    return int(max(256 << 20, min(MEMORY_PER_CHILD, share)))


def _apply_limits(limits: ChildLimits, cap: cgroup.ProcessCap | None) -> None:
    """`preexec_fn` of the child: join its pids cgroup, lower its resource limits (never above
    the current hard ones)."""
    die_with_parent()
    if cap is not None:
        cap.join()
    wanted = {
        resource.RLIMIT_CPU: limits.cpu_seconds,
        resource.RLIMIT_FSIZE: limits.file_size_bytes,
        resource.RLIMIT_NPROC: limits.processes,
        resource.RLIMIT_NOFILE: limits.open_files,
    }
    if limits.address_space_bytes is not None:
        wanted[resource.RLIMIT_AS] = limits.address_space_bytes
    for which, value in wanted.items():
        _, hard = resource.getrlimit(which)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(which, (value, hard))


def bwrap_argv(workdir: Path, readable: list[Path]) -> list[str]:
    """The bubblewrap command line that confines a child (to prefix its argv).

    Only the system folders, the Python installation (`sys.prefix`, `sys.base_prefix`) and
    `readable` are visible, read-only; `workdir` is the one writable folder. So the repository
    (the hidden checks and thresholds), the Omniglot archives and cache (meta-test images),
    home folders and the grader's results are not there at all, wherever they live.

    A root grader needs no user namespace: bubblewrap keeps only CAP_SETUID and CAP_SETGID for
    `setpriv`, which drops the child to the real unprivileged user `NOBODY` (no capabilities,
    no new privileges) before it runs Python, so the kernel's limits for ordinary users
    (`RLIMIT_NPROC`) apply to it. `workdir` must then belong to that user (`hand_over`).
    Otherwise the child is `NOBODY` inside a user namespace and the grader's user outside.
    """
    as_root = os.geteuid() == 0
    if as_root:
        argv = ["bwrap", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv = ["bwrap", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        argv += ["--cap-drop", "ALL"]
    argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--die-with-parent", "--new-session"]
    for folder in SYSTEM_FOLDERS:
        if os.path.islink(folder):  # merged /usr: /lib -> usr/lib
            argv += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            argv += ["--ro-bind", folder, folder]
    argv += ["--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm", "--proc", "/proc"]
    argv += ["--perms", "1777", "--tmpfs", "/tmp"]
    gpus = sorted(glob.glob("/dev/nvidia*"))  # CUDA needs its device files and /sys (untested)
    for device in gpus:
        argv += ["--dev-bind", device, device]
    if gpus:
        argv += ["--ro-bind", "/sys", "/sys"]
    python = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent.parent}
    visible = [
        folder
        for folder in sorted({*python, *(p.resolve() for p in python)})
        if not any(str(folder).startswith(system + "/") for system in SYSTEM_FOLDERS)
    ]
    visible += [Path(p) for p in readable]
    # The folders bubblewrap makes to hold these are 0700 unless told: open them to the child.
    parents = {a for p in [*visible, workdir] for a in p.parents if str(a) not in ("/", "/tmp")}
    for parent in sorted(parents, key=lambda a: len(a.parts)):
        if not any(str(parent).startswith(system + "/") for system in SYSTEM_FOLDERS):
            argv += ["--perms", "0755", "--dir", str(parent)]
    for path in visible:
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir), "--"]
    if as_root:
        argv += ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
        argv += ["--inh-caps=-all", "--no-new-privs", "--"]
    return argv


def hand_over(workdir: Path) -> None:
    """Give `workdir` and its folders to the sandboxed child's user (a root grader's child is
    `NOBODY`, who must be able to write its replies there). Files stay the grader's."""
    if os.geteuid() != 0:
        return
    for folder, _, _ in os.walk(workdir):
        os.chown(folder, NOBODY, NOBODY)


@functools.cache
def sandbox_available() -> bool:
    """Whether bubblewrap is installed and can start a confined Python here (checked once)."""
    if os.environ.get(SANDBOX_SWITCH, "") == "none" or shutil.which("bwrap") is None:
        return False
    with tempfile.TemporaryDirectory(prefix=f"autograder-probe-{os.getpid()}-") as folder:
        hand_over(Path(folder))
        probe = bwrap_argv(Path(folder), []) + [sys.executable, "-I", "-c", "import numpy"]
        try:
            done = subprocess.run(probe, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
    return done.returncode == 0


def isolation() -> str:
    """How children are confined on this machine (for the report header and results.json)."""
    processes = f"; processes capped by {cgroup.describe()}"
    if sandbox_available():
        return sandbox_mode() + processes
    return (
        RLIMIT_MODE
        + processes
        + " (bubblewrap is missing or could not start a confined Python here: the child can"
        " read what the grader can)"
    )


STALE_FOLDER = re.compile(r"^autograder-(?:child|probe)-(\d+)-")  # ...-<grader pid>-<random>


@functools.cache
def remove_stale_workdirs() -> None:
    """Remove the working folders left in the temporary folder by graders that were killed
    (SIGKILL skips every cleanup); each folder's name holds its grader's pid. Once per grader."""
    for folder in Path(tempfile.gettempdir()).glob("autograder-*-*"):
        match = STALE_FOLDER.match(folder.name)
        if match and not cgroup.pid_alive(int(match.group(1))) and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


class Child(subprocess.Popen):
    """A started child process, with `cap`, the pids (and memory) cgroup holding it and
    everything it starts (None where the grader cannot make cgroups). Every running child is
    in `LIVE`, so that a grading that reaches its deadline can stop them all (`kill_all`)."""

    def __init__(self, argv: list[str], cap: cgroup.ProcessCap | None, **kwargs) -> None:
        self.cap = cap
        super().__init__(argv, **kwargs)
        with _LIVE_LOCK:
            LIVE.add(self)


LIVE: set[Child] = set()
_LIVE_LOCK = threading.Lock()


def kill_all() -> None:
    """Kill every child this grader started that is still running (the deadline's last word)."""
    with _LIVE_LOCK:
        children = list(LIVE)
    for child in children:
        kill_child(child)


def run_child(
    argv: list[str],
    workdir: Path,
    env: dict[str, str],
    limits: ChildLimits,
    readable: list[Path] | None = None,
) -> Child:
    """Start untrusted code: the ONE place that decides how a child process is confined.

    The child gets its own session and its own pids cgroup where one can be made (so that
    `kill_child` ends it and everything it started, and a fork bomb stops at
    `cgroup.MAX_TASKS`), the resource limits of `limits`, the environment `env` and nothing
    else, `workdir` as its working folder, stdin as the request pipe, and
    `workdir/stdout.txt` / `stderr.txt` as its output. Where bubblewrap works
    (`sandbox_available`), it also runs in the sandbox of `bwrap_argv`, seeing only `workdir`
    (writable), `readable` and the Python installation; otherwise it runs as a plain
    subprocess (`isolation()` says which).
    """
    if sandbox_available():
        hand_over(workdir)
        argv = bwrap_argv(workdir, list(readable or [])) + argv
    cap = cgroup.ProcessCap.create(memory_bytes=limits.memory_bytes)
    with open(workdir / "stdout.txt", "wb") as out, open(workdir / "stderr.txt", "wb") as err:
        return Child(
            argv,
            cap,
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=err,
            start_new_session=True,
            # Only system calls (prctl, a write, setrlimit) run between fork and exec.
            preexec_fn=lambda: _apply_limits(limits, cap),
            close_fds=True,
        )


def kill_child(process: Child) -> None:
    """Kill the child and every process in its session and its cgroup, reap it, and remove
    the cgroup."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process.cap is not None:
        process.cap.kill_all()  # also those that left the session (setsid)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    if process.cap is not None:
        process.cap.remove()
    with _LIVE_LOCK:
        LIVE.discard(process)


INSTALL_BUBBLEWRAP = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install "
    "bubblewrap`, on Gradescope the package's setup.sh does it), then check with "
    "`python -m autograder doctor`"
)


def why_no_sandbox() -> str | None:
    """None where the sandbox starts here; otherwise why not, with what to do."""
    if sandbox_available():
        return None
    if os.environ.get(SANDBOX_SWITCH, "") == "none":
        return f"the sandbox is switched off ({SANDBOX_SWITCH}=none)"
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not on the PATH: " + INSTALL_BUBBLEWRAP
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is not on the PATH: install util-linux"
    return (
        "bubblewrap is installed but could not start a confined Python here (a container "
        "that forbids namespaces? run `python -m autograder doctor` for its error)"
    )


def require_sandbox(allow_unsandboxed: bool) -> None:
    """Fail closed: raise `GradingError` where untrusted code would run without the sandbox,
    unless the instructor said `--allow-unsandboxed` (then only warn)."""
    from autograder.results import GradingError

    reason = why_no_sandbox()
    if reason is None:
        return
    if allow_unsandboxed:
        print(f"warning: grading WITHOUT the sandbox ({reason})", file=sys.stderr)
        return
    raise GradingError(
        f"the sandbox cannot start: {reason}. Student code would run with the grader's rights "
        "(reading the hidden checks and every other submission); pass --allow-unsandboxed to "
        "grade anyway"
    )
