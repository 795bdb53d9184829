"""Run a submission's code in a child process and talk to it through files that cannot execute.

The grader never imports a submission. `ChildSession` starts `autograder/child.py` in a fresh
process (through `autograder.sandbox.run_child`, the one place that decides how a child is
started and confined),
sends it requests as JSON lines on its stdin, and reads each reply from a JSON file plus `.npy`
arrays that it loads with `allow_pickle=False`. Every call has a timeout; a child that hangs is
killed with its whole process group, one that dies or raises is reported as a `ChildError`
whose message is written for the student, and the next call starts a fresh child.

The child's stdout and stderr go to files (never to pipes that could fill and stall it); the
grader reads only their head and tail (`output_excerpt`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from autograder import sandbox
from kit.submission import SUBMISSION_FILES

AUTOGRADER = Path(__file__).resolve().parent
REPO_ROOT = AUTOGRADER.parent
CHILD_SCRIPT = AUTOGRADER / "child.py"
# The kit modules the child's harness imports (`kit.step`, `task_loader`): staged next to it,
# so the child's sys.path holds neither the repository nor the data package.
STAGED_KIT_FILES = (
    "__init__.py",
    "loader.py",
    "submission.py",
    "step.py",
    "recipe.py",
    "accuracy.py",
    "atomic.py",
)

ARRAY_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.npy$")
MAX_ARRAY_BYTES = 1 << 30  # a reply array larger than this is refused, not loaded
OUTPUT_HEAD, OUTPUT_TAIL = 2000, 2000  # characters of the child's output kept for feedback


# Which submission files each operation imports in the child (`child.py`).
OP_MODULES = {"sample": ("load_data",), "batch": ("load_data",), "forward": ("models",)}
OP_MODULES |= {"loss": ("models",), "train": ("models",), "predict": ("models",)}
STARTUP_SECONDS = 60.0  # a training's allowance before its first step (imports, data)
# A training is stopped early once it is this many times behind its per-step allowance: far
# slower code is caught after a few dozen steps, while a busy machine that slows a correct one
# a little past the allowance is left to the whole-training timeout, as before.
BEHIND_FACTOR = 2.0


class ChildError(Exception):
    """The submission failed a call: it raised, hung, exited or returned something unreadable.

    The message is feedback for the student; the check that made the call loses its points.
    """


class DeadlineReached(ChildError):
    """The grading's deadline came before the call finished: the check is not graded."""


@dataclass
class GradingState:
    """What every child session of one grader process shares.

    deadline_at: `time.monotonic()` at which every call stops (None: none); deadline: its
    length in seconds, for the message. children: how many children run at once (each gets
    that share of the memory). stuck: (submission, file or op) -> the message of the call
    that was stuck there, so that the same wait is not paid again by every later check.
    """

    deadline_at: float | None = None
    deadline: float | None = None
    children: int = 1
    stuck: dict[tuple[Path, str], str] = field(default_factory=dict)

    def deadline_message(self) -> str:
        return f"not graded: the grading deadline of {self.deadline:.0f} s was reached"

    def past_deadline(self) -> bool:
        return self.deadline_at is not None and time.monotonic() >= self.deadline_at


STATE = GradingState()


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
        self.process: sandbox.Child | None = None
        self.workdir: Path | None = None
        self.outputs: list[str] = []  # excerpts of the output of finished children
        self.started_with: dict[str, Path] = {}  # the shared arrays the child can see
        self._next_id = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start a fresh child in a fresh working folder."""
        self.stop()
        sandbox.remove_stale_workdirs()
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
        memory = sandbox.child_memory_bytes(STATE.children)
        if self.device == "cuda":  # the driver maps far more than it uses; its memory is its own
            limits = sandbox.ChildLimits(address_space_bytes=None)
        else:
            limits = sandbox.ChildLimits(memory_bytes=memory)
        self.started_with = dict(self.shared_arrays)
        readable = [Path(p).resolve() for p in self.shared_arrays.values()]
        self.process = sandbox.run_child(argv, self.workdir, env, limits, readable)

    def stop(self) -> None:
        """Kill the child (if any), keep an excerpt of its output, and remove its folder."""
        if self.process is not None:
            sandbox.kill_child(self.process)
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
        self._refuse_if_stuck(op, params)
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
        try:
            reply = self._wait(
                io / f"reply-{request_id}.json", what, timeout * self.timeout_scale, op, params
            )
        except DeadlineReached:
            raise
        except ChildError as error:
            if "did not finish within" in str(error) and op == "forward":
                STATE.stuck.setdefault((self.submission, "forward"), str(error))
            raise
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

    def _refuse_if_stuck(self, op: str, params: dict) -> None:
        """Fail at once a call that would wait where an earlier call was stuck: past the
        deadline, in a file whose import never returned, or a training of a model whose
        forward never returned."""
        if STATE.past_deadline():
            self.stop()
            raise DeadlineReached(STATE.deadline_message())
        modules = OP_MODULES.get(op, ())
        if op == "train" and params.get("sampler") == "student":
            modules += ("load_data",)
        for module in modules:
            message = STATE.stuck.get((self.submission, f"{module}.py"))
            if message:
                raise ChildError(f"not run: {message}")
        forward = STATE.stuck.get((self.submission, "forward"))
        if op == "forward" and forward:
            raise ChildError(f"not run: an earlier check found that {forward}")
        if op == "train" and forward:
            raise ChildError(
                f"not trained, as training calls forward thousands of times and an earlier "
                f"check found that {forward.split(' and was stopped')[0]}: fix forward first "
                "(see the forward checks' feedback)"
            )

    def _stuck_import(self) -> str | None:
        """The submission file whose import the child was running, if any (`child.py`
        leaves an `importing-<file>` marker while it imports)."""
        markers = sorted(self.workdir.glob("io/importing-*.py"), key=lambda p: p.stat().st_mtime)
        return markers[-1].name.removeprefix("importing-") if markers else None

    def _too_slow(self, io: Path, request_id: str, params: dict, elapsed: float) -> str | None:
        """For a training (`steps` in its parameters): why it is `BEHIND_FACTOR` times behind
        its schedule, if it is: `STARTUP_SECONDS`, then `per_step` seconds a step (by default
        what the call's timeout allows beyond the startup, so this stops early a training that
        its timeout would stop late). `child.py` writes the steps done to `progress-<id>`."""
        per_step = params.get("per_step")
        if per_step is None and params.get("steps"):  # the training timeout is startup + steps
            per_step = (params["timeout"] - STARTUP_SECONDS) / params["steps"]
        if not per_step or per_step <= 0:
            return None
        try:
            done = int((io / f"progress-{request_id}").read_text() or 0)
        except (OSError, ValueError):
            done = 0
        allowed = (STARTUP_SECONDS + BEHIND_FACTOR * per_step * (done + 1)) * self.timeout_scale
        if elapsed <= allowed:
            return None
        return (
            f"it had run {done} training steps in {elapsed:.0f} s, {BEHIND_FACTOR:g} times over "
            f"the allowance of {STARTUP_SECONDS * self.timeout_scale:.0f} s plus "
            f"{per_step * self.timeout_scale:g} s per step (the reference takes a small fraction "
            "of that): look for work far slower than the "
            "reference's in forward or loss_function (a Python loop over tasks or pixels, "
            "a model far larger than the spec's)"
        )

    def _wait(self, path: Path, what: str, timeout: float, op: str = "", params=None) -> dict:
        started = time.monotonic()
        deadline = started + timeout
        request_id = path.name.removeprefix("reply-").removesuffix(".json")
        delay = 0.002
        while True:
            now = time.monotonic()
            if path.is_file() and not path.is_symlink():
                try:
                    return json.loads(path.read_text())
                except (OSError, ValueError) as error:
                    self.stop()
                    raise ChildError(f"the reply to {what} could not be read ({error})") from None
            if STATE.past_deadline():  # before the exit check: the deadline kills children
                self.stop()
                raise DeadlineReached(STATE.deadline_message())
            if self.process.poll() is not None:
                code = self.process.returncode
                cap = self.process.cap
                if cap is not None and cap.oom_kills() > 0:
                    limit = (cap.memory_limit() or 0) >> 20
                    self.stop()
                    raise ChildError(
                        f"memory limit exceeded: the process running {what} used more than "
                        f"its {limit} MiB of memory and was killed; look for tensors or lists "
                        "that grow with every step or task (keeping the graph of every loss, "
                        "a copy of the images per task)"
                    )
                if sandbox.sandbox_available() and 128 < code <= 128 + 64:
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
            slow = op == "train" and self._too_slow(
                path.parent,
                request_id,
                dict(params or {}, timeout=timeout / self.timeout_scale),
                now - started,
            )
            if slow:
                self.stop()
                raise ChildError(f"{what} was stopped: {slow}")
            if now > deadline:
                stuck = self._stuck_import()
                self.stop()
                if stuck:
                    message = (
                        f"importing {stuck} did not finish within {timeout:.0f} s and was "
                        "stopped: code at module level (outside functions) runs at import; "
                        "look for an infinite loop or a long computation there"
                    )
                    STATE.stuck[(self.submission, stuck)] = message
                    raise ChildError(f"{message}; so {what} could not run")
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
