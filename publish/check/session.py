"""Run the student's code in a child process, as the grader does, without the grader's sandbox.

`ChildSession` stages the grader's harness (`check/child.py`) and the kit modules it imports in
a fresh temporary folder, starts it with `python -I`, and talks to it as the grader does: one
JSON request per line on its stdin, replies as a JSON file plus `.npy` arrays read with
`allow_pickle=False`. Each call has a timeout, so an endless loop costs one check, not the
whole run. A failure is a `ChildError` whose message is the student's feedback; the next call
starts a fresh child.

No bubblewrap, cgroups or resource limits: on the student's machine the code is the student's
own (the grader confines it; see the grader's documentation).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHECK = Path(__file__).resolve().parent
PACKAGE = CHECK.parent  # the student package: kit/, the stubs, check/
SUBMISSION_FILES = ("load_data.py", "models.py")
ISOLATION = "a plain child process (no sandbox: the code is your own), a timeout per call"


class ChildError(Exception):
    """The submission failed a call: it raised, hung, exited or returned something unreadable."""


@dataclass
class Reply:
    """What a child returned for one request: JSON values and arrays."""

    result: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


class ChildSession:
    """One child process running the submission in `submission` (a folder with the two files).

    Args:
        submission: the folder holding `load_data.py` and `models.py` (only those are copied).
        device: `cpu` or `cuda`, where the child puts the MANN.
        threads: torch CPU threads in the child.
        timeout_scale: multiplies every call's timeout (slow machines).
    """

    def __init__(
        self, submission: Path, device: str = "cpu", threads: int = 1, timeout_scale: float = 1.0
    ) -> None:
        self.submission = Path(submission)
        self.device, self.threads, self.timeout_scale = device, threads, timeout_scale
        self.process: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self._next_id = 0

    def start(self) -> None:
        """Start a fresh child in a fresh folder holding copies of the two files."""
        self.stop()
        self.workdir = Path(tempfile.mkdtemp(prefix="check-child-"))
        submission, harness = self.workdir / "submission", self.workdir / "harness"
        (harness / "kit").mkdir(parents=True)
        submission.mkdir()
        (self.workdir / "io").mkdir()
        for name in SUBMISSION_FILES:
            if (self.submission / name).is_file():
                shutil.copyfile(self.submission / name, submission / name)
        shutil.copyfile(CHECK / "child.py", harness / "child.py")
        for module in sorted((PACKAGE / "kit").glob("*.py")):
            shutil.copyfile(module, harness / "kit" / module.name)
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
        env.update(OMP_NUM_THREADS=str(self.threads), MPLCONFIGDIR=str(self.workdir / "mpl"))
        argv = [sys.executable, "-I", str(harness / "child.py"), "--submission", str(submission)]
        argv += ["--io", str(self.workdir / "io"), "--device", self.device]
        argv += ["--threads", str(self.threads)]
        with open(self.workdir / "stderr.txt", "wb") as err:
            self.process = subprocess.Popen(
                argv,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def stop(self) -> None:
        """Kill the child (and what it started) and remove its folder."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.process.wait()
            self.process.stdin.close()
            self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def call(
        self,
        op: str,
        what: str,
        timeout: float = 60.0,
        arrays: dict[str, np.ndarray] | None = None,
        **params,
    ) -> Reply:
        """Ask the child to run `op` (see `check/child.py`) and wait for its reply.

        Raises:
            ChildError: the submission raised, hung, exited, or replied with unreadable arrays.
        """
        if self.process is None or self.process.poll() is not None:
            self.start()
        io = self.workdir / "io"
        self._next_id += 1
        names = {name: f"in-{self._next_id}-{name}.npy" for name in arrays or {}}
        for name, array in (arrays or {}).items():
            np.save(io / names[name], np.ascontiguousarray(array), allow_pickle=False)
        request = {"id": self._next_id, "op": op, "params": dict(params, shared={})}
        request["arrays"] = names
        try:
            self.process.stdin.write((json.dumps(request) + "\n").encode())
            self.process.stdin.flush()
        except OSError:
            pass  # the child is gone: the wait below says how it ended
        reply = self._wait(io / f"reply-{self._next_id}.json", what, timeout * self.timeout_scale)
        if not reply.get("ok"):
            if reply.get("phase") == "import":
                raise ChildError(
                    f"{reply.get('error')}; so {what} could not run: fix the error at module "
                    "level (top-level code runs when the file is imported)"
                )
            raise ChildError(f"{what} raised {reply.get('error', 'an error')}")
        try:
            loaded = {
                key: np.load(io / str(name), allow_pickle=False)
                for key, name in reply.get("arrays", {}).items()
            }
        except (OSError, ValueError) as error:
            raise ChildError(f"{what} returned an unreadable array ({error})") from None
        return Reply(reply.get("result", {}), loaded)

    def _wait(self, path: Path, what: str, timeout: float) -> dict:
        deadline, delay = time.monotonic() + timeout, 0.002
        while not path.is_file():
            if self.process.poll() is not None:
                code = self.process.returncode
                stderr = (self.workdir / "stderr.txt").read_text(errors="replace")[-1500:].strip()
                self.stop()
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
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
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as error:
            self.stop()
            raise ChildError(f"the reply to {what} could not be read ({error})") from None
