"""Run a submission's code in a child process and talk to it through files that cannot execute.

The grader never imports a submission. `ChildSession` starts `autograder/child.py` in a fresh
process (through `run_child`, the one place that decides how a child is started and confined),
sends it requests as JSON lines on its stdin, and reads each reply from a JSON file plus `.npy`
arrays that it loads with `allow_pickle=False`. Every call has a timeout; a child that hangs is
killed with its whole process group, one that dies or raises is reported as a `ChildError`
whose message is written for the student, and the next call starts a fresh child.

The child's stdout and stderr go to files (never to pipes that could fill and stall it); the
grader reads only their head and tail (`output_excerpt`).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from autograder import cgroup
from kit.submission import SUBMISSION_FILES

AUTOGRADER = Path(__file__).resolve().parent
REPO_ROOT = AUTOGRADER.parent
CHILD_SCRIPT = AUTOGRADER / "child.py"
# The kit modules the child's harness imports (`train_step`, `task_loader`): staged next to it,
# so the child's sys.path holds neither the repository nor the data package.
STAGED_KIT_FILES = ("__init__.py", "loader.py", "submission.py", "train.py")

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
ARRAY_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.npy$")
MAX_ARRAY_BYTES = 1 << 30  # a reply array larger than this is refused, not loaded
OUTPUT_HEAD, OUTPUT_TAIL = 2000, 2000  # characters of the child's output kept for feedback
_LIBC = ctypes.CDLL(None, use_errno=True)  # loaded here: only the call runs after fork
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` part: the kernel kills this process (SIGKILL) when its parent dies, so a
    grader killed midway leaves no child running (a batch rerun must not race an orphan)."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ChildError(Exception):
    """The submission failed a call: it raised, hung, exited or returned something unreadable.

    The message is feedback for the student; the check that made the call loses its points.
    """


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
    """A started child process, with `cap`, the pids cgroup holding it and everything it
    starts (None where the grader cannot make cgroups)."""

    def __init__(self, argv: list[str], cap: cgroup.ProcessCap | None, **kwargs) -> None:
        self.cap = cap
        super().__init__(argv, **kwargs)


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
    cap = cgroup.ProcessCap.create()
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


def output_excerpt(path: Path, head: int = OUTPUT_HEAD, tail: int = OUTPUT_TAIL) -> str:
    """The head and tail of a (possibly huge) output file, with the middle elided."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as file:
            if size <= head + tail:
                return file.read().decode("utf-8", "replace")
            first = file.read(head).decode("utf-8", "replace")
            file.seek(size - tail)
            last = file.read(tail).decode("utf-8", "replace")
    except OSError:
        return ""
    return f"{first}\n[... {size - head - tail} bytes of output left out ...]\n{last}"


@dataclass
class Reply:
    """What a child returned for one request: JSON values and arrays."""

    result: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class ChildSession:
    """One child process serving a submission, restarted on demand after a failure.

    Args:
        submission: the folder holding `load_data.py` and `models.py` (only those are copied).
        device: `cpu` or `cuda`, where the child puts the MANN.
        threads: torch CPU threads in the child.
        timeout_scale: multiplies every call's timeout (slow machines, debugging).
        shared_arrays: name -> path of read-only `.npy` inputs the child may open (meta-train
            images); never the meta-test images.
    """

    def __init__(
        self,
        submission: Path,
        device: str = "cpu",
        threads: int = 1,
        timeout_scale: float = 1.0,
        shared_arrays: dict[str, Path] | None = None,
    ) -> None:
        self.submission = Path(submission)
        self.device = device
        self.threads = threads
        self.timeout_scale = timeout_scale
        self.shared_arrays = dict(shared_arrays or {})
        self.process: Child | None = None
        self.workdir: Path | None = None
        self.outputs: list[str] = []  # excerpts of the output of finished children
        self.started_with: dict[str, Path] = {}  # the shared arrays the child can see
        self._next_id = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start a fresh child in a fresh working folder."""
        self.stop()
        remove_stale_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"autograder-child-{os.getpid()}-"))
        (self.workdir / "submission").mkdir()
        for name in SUBMISSION_FILES:  # nothing else of the submission folder is read
            if (self.submission / name).is_file():
                shutil.copyfile(self.submission / name, self.workdir / "submission" / name)
        harness = self.workdir / "harness"
        (harness / "kit").mkdir(parents=True)
        shutil.copyfile(CHILD_SCRIPT, harness / "child.py")
        for name in STAGED_KIT_FILES:
            shutil.copyfile(REPO_ROOT / "kit" / name, harness / "kit" / name)
        (self.workdir / "io").mkdir()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "OMP_NUM_THREADS": str(self.threads),
            "MKL_NUM_THREADS": str(self.threads),
            "MPLCONFIGDIR": str(self.workdir / "mpl"),
        }
        argv = [
            sys.executable,
            "-I",  # isolated: no PYTHON* variables, no user site, no cwd on sys.path
            str(harness / "child.py"),
            "--submission",
            str(self.workdir / "submission"),
            "--io",
            str(self.workdir / "io"),
            "--device",
            self.device,
            "--threads",
            str(self.threads),
        ]
        limits = ChildLimits() if self.device != "cuda" else ChildLimits(address_space_bytes=None)
        self.started_with = dict(self.shared_arrays)
        readable = [Path(p).resolve() for p in self.shared_arrays.values()]
        self.process = run_child(argv, self.workdir, env, limits, readable)

    def stop(self) -> None:
        """Kill the child (if any), keep an excerpt of its output, and remove its folder."""
        if self.process is not None:
            kill_child(self.process)
            self.process = None
        if self.workdir is not None:
            excerpt = self.output()
            if excerpt.strip():
                self.outputs.append(excerpt)
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def output(self) -> str:
        """Head and tail of what the current child printed (stdout, then stderr)."""
        if self.workdir is None:
            return ""
        parts = []
        for stream in ("stdout", "stderr"):
            text = output_excerpt(self.workdir / f"{stream}.txt")
            if text.strip():
                parts.append(f"--- {stream} ---\n{text.rstrip()}")
        return "\n".join(parts)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- calls -------------------------------------------------------------------------------

    def call(
        self,
        op: str,
        what: str,
        timeout: float = 60.0,
        arrays: dict[str, np.ndarray] | None = None,
        **params,
    ) -> Reply:
        """Ask the child to run `op` and wait for its reply.

        Args:
            op: the harness operation (see `child.py`).
            what: the submission code the call runs, for messages ("DataGenerator._sample").
            timeout: seconds (times `timeout_scale`) before the child is killed.
            arrays: inputs, saved as `.npy` in the child's folder.
            params: JSON-serialisable parameters.

        Raises:
            ChildError: the submission raised, hung, exited, or replied with unreadable arrays.
        """
        if (
            self.process is None
            or self.process.poll() is not None
            or self.started_with != self.shared_arrays  # a new input must be made visible
        ):
            self.start()
        io = self.workdir / "io"
        self._next_id += 1
        request_id = self._next_id
        names = {}
        for name, array in (arrays or {}).items():
            names[name] = f"in-{request_id}-{name}.npy"
            np.save(io / names[name], np.ascontiguousarray(array), allow_pickle=False)
        params = dict(params, shared={k: str(v) for k, v in self.shared_arrays.items()})
        request = {"id": request_id, "op": op, "params": params, "arrays": names}
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the child is gone: the wait below reports how it ended
        reply = self._wait(io / f"reply-{request_id}.json", what, timeout * self.timeout_scale)
        for name in names.values():
            (io / name).unlink(missing_ok=True)
        if not reply.get("ok"):
            if reply.get("phase") == "import":
                raise ChildError(
                    f"{reply.get('error')}; so {what} could not run: fix the error at module "
                    "level (top-level code runs when the file is imported)"
                )
            raise ChildError(f"{what} raised {reply.get('error', 'an error')}")
        return Reply(reply.get("result", {}), self._load_arrays(io, reply.get("arrays", {}), what))

    def _wait(self, path: Path, what: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            if path.is_file() and not path.is_symlink():
                try:
                    return json.loads(path.read_text())
                except (OSError, ValueError) as error:
                    self.stop()
                    raise ChildError(f"the reply to {what} could not be read ({error})") from None
            if self.process.poll() is not None:
                code = self.process.returncode
                if sandbox_available() and 128 < code <= 128 + 64:
                    code = 128 - code  # bwrap reports a signal death as exit code 128 + signal
                stderr = output_excerpt(self.workdir / "stderr.txt", 0, 1500).strip()
                self.stop()
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                if code == -signal.SIGXCPU:
                    how += " (CPU time limit)"
                elif code == -signal.SIGXFSZ:
                    how += " (file size limit: it wrote a file over 256 MiB)"
                detail = f"; the end of its stderr:\n{stderr}" if stderr else ""
                raise ChildError(
                    f"the process running {what} {how} (sys.exit, os._exit or a crash in your "
                    f"code?){detail}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ChildError(
                    f"{what} did not finish within {timeout:.0f} s and was stopped: look for an "
                    "infinite loop (a `while` that never ends, an iterator that never yields) or "
                    "work far slower than the reference's"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def _load_arrays(self, io: Path, names: dict, what: str) -> dict[str, np.ndarray]:
        arrays = {}
        for key, name in names.items():
            path = io / str(name)
            ok = (
                isinstance(name, str)
                and ARRAY_NAME.match(name)
                and path.is_file()
                and not path.is_symlink()
                and path.stat().st_size <= MAX_ARRAY_BYTES
            )
            if not ok:
                raise ChildError(f"{what} returned an array the grader cannot read ({name!r})")
            try:
                arrays[key] = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as error:
                raise ChildError(f"{what} returned an unreadable array ({error})") from None
            finally:
                path.unlink(missing_ok=True)
        return arrays
