"""Grading at scale: `grade-all` (killed midway, then resumed) and the Gradescope package run
in a folder laid out like `/autograder`.

Every grading here runs only a few cheap checks (`--only CHEAP`), never the accuracy checks:
what is tested is the batch and packaging machinery around `python -m autograder grade`, whose
verdicts `tests/test_grader.py` covers.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

from autograder import cgroup, sandbox

from .conftest import omniglot_source

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "submissions"
CHEAP = "loss_equals or same_seed"  # 2 + 2 points, a few seconds per submission
SCHEMA_KEYS = {"score", "execution_time", "output", "tests"}
SUB_FILES = ("load_data.py", "models.py")

# A class of 10, graded with --only CHEAP: (folder, score out of 4, status). Measured with an
# uninterrupted `grade-all` run; each bug loses the check its corpus entry targets.
CLASS = {
    "reference": (REPO / "solutions", 4, "graded"),
    "stubs": (REPO / "assignment", 0, "graded"),
    "exits_in_sample": (CORPUS / "exits_in_sample", 2, "graded"),
    "loss_all_rows": (CORPUS / "loss_all_rows", 2, "graded"),
    "global_rng": (CORPUS / "global_rng", 2, "graded"),
    "raises_at_import": (CORPUS / "raises_at_import", 2, "graded"),
    "hangs_in_forward": (CORPUS / "hangs_in_forward", 4, "graded"),
    "numpy_loss": (CORPUS / "numpy_loss", 4, "graded"),
    "query_not_shuffled": (CORPUS / "query_not_shuffled", 4, "graded"),
    "no_code": (None, 0, "grader error"),  # a folder without load_data.py or models.py
}


def grader_env() -> dict[str, str]:
    env = dict(os.environ)
    source = omniglot_source()
    if source is not None:
        env["OMNIGLOT_SOURCE"] = str(source)
    return env


def autograder(*args: str) -> list[str]:
    return [sys.executable, "-m", "autograder", *args]


@pytest.fixture(scope="module")
def klass(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("class")
    for name, (source, _, _) in CLASS.items():
        if source is None:
            (folder / name).mkdir()
            (folder / name / "notes.txt").write_text("I could not finish, sorry\n")
        else:
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def leftovers_of_dead_graders() -> list[Path]:
    """Working folders and pids cgroups whose grader is no longer running."""
    found = []
    for path in Path(tempfile.gettempdir()).glob("autograder-*-*"):
        match = sandbox.STALE_FOLDER.match(path.name)
        if match and not cgroup.pid_alive(int(match.group(1))):
            found.append(path)
    parent = cgroup.parent_folder()
    for path in parent.glob("autograder-*") if parent else []:
        match = cgroup.NAME.match(path.name)
        if match and not cgroup.pid_alive(int(match.group(1))):
            found.append(path)
    return found


def assert_results_schema(results: dict) -> None:
    assert set(results) == SCHEMA_KEYS
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


def test_grade_all_killed_midway_resumes_without_regrading_and_completes(klass, tmp_path):
    out, results = tmp_path / "gradebook.csv", tmp_path / "gradebook_results"
    command = autograder("grade-all", str(klass), "--out", str(out), "--jobs", "2")
    command += ["--only", CHEAP, "--device", "cpu"]
    first = subprocess.Popen(
        command,
        cwd=REPO,
        env=grader_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while len(list(results.glob("*/results.json"))) < 3 and first.poll() is None:
        assert time.monotonic() < deadline, "grade-all graded nothing in 600 s"
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)  # like a power cut: no cleanup runs
    first.wait()
    finished = {p.parent.name: p.stat().st_mtime_ns for p in results.glob("*/results.json")}
    assert 3 <= len(finished) < len(CLASS), "the kill came too late to test a resume"
    assert not out.exists()

    second = subprocess.run(
        command, cwd=REPO, env=grader_env(), capture_output=True, text=True, check=False
    )
    assert second.returncode == 0, second.stderr
    # Nothing finished was graded again, and every submission has a valid results.json.
    for name, mtime in finished.items():
        assert (results / name / "results.json").stat().st_mtime_ns == mtime
    for name in CLASS:
        assert_results_schema(json.loads((results / name / "results.json").read_text()))
    assert f"{len(finished)} from an earlier run" in second.stdout
    assert "grader error: no_code (score 0)" in second.stdout
    with open(out) as file:
        rows = {row["submission"]: row for row in csv.DictReader(file)}
    assert {name: (float(r["score"]), r["status"]) for name, r in rows.items()} == {
        name: (float(score), status) for name, (_, score, status) in CLASS.items()
    }
    assert all(float(r["max_score"]) == 4 for n, r in rows.items() if n != "no_code")
    # One column per check: its score (empty where the grading did not run it).
    assert rows["reference"]["the same seed gives the same tasks"] == "2"
    assert rows["loss_all_rows"]["loss equals the cross entropy of the query row"] == "0"
    assert rows["no_code"]["the same seed gives the same tasks"] == ""
    # What the killed graders left (children's folders, cgroups) the new ones removed.
    assert leftovers_of_dead_graders() == []


def test_what_a_killed_grader_left_is_removed_by_the_next_one(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()  # reaped: its pid is no longer running
    stale = Path(tempfile.mkdtemp(prefix=f"autograder-child-{dead.pid}-"))
    (stale / "submission").mkdir()
    alive = Path(tempfile.mkdtemp(prefix=f"autograder-child-{os.getpid()}-"))
    try:
        sandbox.remove_stale_workdirs.__wrapped__()
        assert not stale.exists()
        assert alive.exists()  # a running grader's folder is left alone
    finally:
        shutil.rmtree(alive, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)

    parent = cgroup.parent_folder()
    if parent is None:
        return  # no cgroups here (not root, or no writable pids hierarchy): folders only
    left = parent / f"autograder-{dead.pid}-7"
    left.mkdir()
    sleeper = subprocess.Popen(["sleep", "300"])
    (left / "cgroup.procs").write_text(str(sleeper.pid))  # a process the dead grader left
    cap = cgroup.ProcessCap.create()  # a new grader's first child sweeps its parent folder
    assert cap is not None
    try:
        assert not left.exists()
        assert sleeper.wait(timeout=10) == -signal.SIGKILL
    finally:
        cap.remove()


def test_grade_all_stops_a_grading_past_its_timeout_and_scores_it_zero(tmp_path):
    klass = tmp_path / "class"
    shutil.copytree(CORPUS / "hangs_in_forward", klass / "slow")
    out = tmp_path / "gradebook.csv"
    done = subprocess.run(  # its forward hangs for 15 s before the grader's own call timeout
        autograder("grade-all", str(klass), "--out", str(out), "--timeout", "4")
        + ["--only", "documented_shape and K1"],
        cwd=REPO,
        env=grader_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "gradebook_results" / "slow" / "results.json").read_text())
    assert_results_schema(results)
    assert results["score"] == 0
    assert "did not finish within 4 s" in results["output"]
    assert "slow,0,0,timeout," in out.read_text()

    # The results folder remembers its options: resuming it with others is refused.
    again = subprocess.run(
        autograder("grade-all", str(klass), "--out", str(out), "--only", "same_seed"),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert again.returncode == 1
    assert again.stderr.startswith("error: could not grade:") and "other options" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def gradescope_source(tmp_path_factory) -> Path:
    """The zip built by `python -m autograder gradescope`, unpacked as /autograder/source."""
    folder = tmp_path_factory.mktemp("gradescope")
    built = subprocess.run(
        autograder("gradescope", "--out", str(folder / "autograder.zip")),
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    source = folder / "source"
    with zipfile.ZipFile(folder / "autograder.zip") as archive:
        names = archive.namelist()
        archive.extractall(source)
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
    assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(names)
    assert "autograder/checks/hidden/thresholds.py" in names
    assert not [n for n in names if n.startswith(("solutions/", "tests/", "cache/"))]
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & 0o111
        (source / script).chmod(0o755)
    assert "pip install" in (source / "setup.sh").read_text()
    return source


def run_autograder(
    source: Path,
    root: Path,
    submission: dict[str, str],
    python: str = sys.executable,
    exit_code: int = 0,
) -> dict:
    """Lay out `root` like /autograder, upload `submission` (relative path -> text), run
    `run_autograder` there (it must exit with `exit_code`) and return its results.json."""
    shutil.copytree(source, root / "source")
    for relative, text in submission.items():
        (root / "submission" / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / relative).write_text(text)
    env = grader_env() | {
        "AUTOGRADER_ROOT": str(root),
        "AUTOGRADER_PYTHON": python,
        "AUTOGRADER_ARGS": f"--only '{CHEAP}'",
    }
    done = subprocess.run(
        [str(root / "source" / "run_autograder")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == exit_code, done.stderr
    return json.loads((root / "results" / "results.json").read_text())


def test_the_gradescope_package_grades_the_reference_uploaded_in_a_folder(
    gradescope_source, tmp_path
):
    files = {f"hw3/{name}": (REPO / "solutions" / name).read_text() for name in SUB_FILES}
    results = run_autograder(gradescope_source, tmp_path / "autograder", files)
    assert_results_schema(results)
    assert results["score"] == 4 and len(results["tests"]) == 2
    assert "isolation:" in results["output"]


def test_the_gradescope_package_writes_results_for_a_broken_submission(gradescope_source, tmp_path):
    broken = {"models.py": "import os\nos._exit(0)\n", "load_data.py": "raise SystemExit(0)\n"}
    results = run_autograder(gradescope_source, tmp_path / "autograder", broken)
    assert_results_schema(results)
    assert results["score"] == 0
    assert all(t["status"] == "failed" for t in results["tests"])
    # No usable Python at all: run_autograder still writes a results.json, score 0, and says
    # that it could not grade with its exit code (the shell's 127: command not found).
    results = run_autograder(
        gradescope_source, tmp_path / "bare", broken, python="/nonexistent", exit_code=127
    )
    assert results["score"] == 0 and results["tests"] == []
    assert results["output"].startswith("NOT GRADED (grader error)")


# -- hostile submissions ---------------------------------------------------------------------
#
# Each is a base submission (the reference, the stubs or a corpus bug) with hostile code put at
# the top of a file (runs at import), at its end (usually replacing a method), or shipped as an
# extra file. They are graded in one `grade-all` run with HOSTILE_ONLY; none may score above
# its base, every one gets a valid results.json.
HOSTILE_ONLY = "same_seed or loss_equals or (documented_shape and K1)"  # 2 + 2 + 2 points
STUBS, REFERENCE = REPO / "assignment", REPO / "solutions"
CHEAT = """
import atexit, json, os
FAKE = json.dumps({"score": 999, "execution_time": 0, "output": "", "tests": []})
def plant():
    # Its working folder, its own folder, Gradescope's results, and every submission's place in
    # the grade-all results folder (the worst case: it knows that path).
    folders = [os.getcwd(), os.path.dirname(os.path.abspath(__file__)), "/autograder/results"]
    folders += [os.path.join(RESULTS, name) for name in NAMES]
    for folder in folders:
        try:
            with open(os.path.join(folder, "results.json"), "w") as f:
                f.write(FAKE)
        except OSError:
            pass
plant()
atexit.register(plant)
"""
SNOOP = """
import glob, os
for pattern in (REPO + "/autograder/checks/hidden/thresholds.py", REPO + "/cache/*/*.npz",
                os.environ.get("OMNIGLOT_SOURCE", "/nonexistent") + "/images_evaluation.zip",
                "/proc/1/cwd/autograder/checks/hidden/thresholds.py",
                "/proc/*/cwd/autograder/checks/hidden/thresholds.py"):
    for path in glob.glob(pattern):
        try:
            with open(path, "rb") as f:
                print("LEAKED", path, len(f.read(100)), flush=True)
        except OSError:
            pass
"""
PATCH = """
import numpy, torch, torch.nn.functional as F
numpy.array_equal = numpy.allclose = lambda *a, **k: True
torch.equal = torch.allclose = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
F.cross_entropy = lambda *a, **k: torch.zeros((), requires_grad=True)
import builtins
_import = builtins.__import__
def _spy(name, *args, **kwargs):
    module = _import(name, *args, **kwargs)
    if name.startswith("kit"):
        module.train_step = lambda *a, **k: (0.0, 1.0)
    return module
builtins.__import__ = _spy
"""
ALWAYS_EQUAL = """
class Equal:
    def __eq__(self, other):
        return True
    __hash__ = object.__hash__
DataGenerator._sample = lambda self: (Equal(), Equal())
"""
NAN = """
def _forward(self, images, labels):
    B, K1, N = labels.shape[:3]
    return torch.full((B, K1, N, N), float("nan"), dtype=torch.float64)
MANN.forward = _forward
"""


def forward_doing(code: str) -> str:
    return f"def _forward(self, images, labels):\n{code}\nMANN.forward = _forward\n"


FORK_BOMB = """
    import os
    while True:
        try:
            if os.fork() == 0:
                os.setsid()  # out of the child's session: only its cgroup still holds it
        except OSError:
            pass
"""


HOSTILE: dict[str, tuple[Path, dict[str, str], dict[str, str], dict[str, str]]] = {
    # name: (base, {file: code at its top}, {file: code at its end}, {extra file: text})
    "loop_at_import": (REFERENCE, {"load_data.py": "while True:\n    pass\n"}, {}, {}),
    "loop_in_forward": (REFERENCE, {}, {"models.py": forward_doing("    while True: pass")}, {}),
    "memory_bomb": (
        REFERENCE,
        {},
        {"models.py": forward_doing("    hog = [bytearray(1 << 30) for _ in range(64)]")},
        {},
    ),
    "huge_file": (
        REFERENCE,
        {},
        {
            "models.py": forward_doing(
                "    with open('big', 'wb') as f:\n        while True: f.write(b'x' * (1 << 20))"
            )
        },
        {},
    ),
    "segfault": (
        REFERENCE,
        {},
        {"models.py": forward_doing("    import ctypes; ctypes.string_at(0)")},
        {},
    ),
    "sys_exit_at_import": (REFERENCE, {"models.py": "import sys\nsys.exit(0)\n"}, {}, {}),
    "os_exit_at_import": (REFERENCE, {"load_data.py": "import os\nos._exit(0)\n"}, {}, {}),
    "sys_exit_in_loss": (
        REFERENCE,
        {},
        {"models.py": "import sys\nMANN.loss_function = lambda self, p, l: sys.exit(0)\n"},
        {},
    ),
    "os_exit_in_forward": (
        REFERENCE,
        {},
        {"models.py": forward_doing("    import os; os._exit(0)")},
        {},
    ),
    "fake_results_atexit": (STUBS, {"models.py": CHEAT, "load_data.py": CHEAT}, {}, {}),
    "monkeypatching": (CORPUS / "loss_all_rows", {"models.py": PATCH}, {}, {}),
    "reads_secrets": (STUBS, {"models.py": SNOOP}, {}, {}),
    "always_equal": (STUBS, {}, {"load_data.py": ALWAYS_EQUAL}, {}),
    "nan_float64_logits": (REFERENCE, {}, {"models.py": NAN}, {}),
    "fork_bomb": (REFERENCE, {}, {"models.py": forward_doing(FORK_BOMB)}, {}),
    "conftest_and_sitecustomize": (
        STUBS,
        {},
        {},
        {
            "conftest.py": "import pytest\n"
            "@pytest.hookimpl(tryfirst=True)\n"
            "def pytest_runtest_call(item):\n"
            "    raise SystemExit(0)\n",
            "sitecustomize.py": CHEAT,
        },
    ),
}
# Scores out of 6 under HOSTILE_ONLY (measured; the base's own score is the upper bound).
EXPECTED_HOSTILE = {
    "loop_at_import": 4,  # loses the sampling check (a 15 s timeout), keeps the model's two
    "loop_in_forward": 4,
    "memory_bomb": 4,  # killed in its memory cgroup, or MemoryError under the address-space limit
    "huge_file": 4,  # "File too large" under the file-size limit
    "segfault": 4,
    "sys_exit_at_import": 2,  # models.py does not import: both model checks lost
    "os_exit_at_import": 4,
    "sys_exit_in_loss": 4,
    "os_exit_in_forward": 4,
    "fake_results_atexit": 0,  # the stubs' 0, whatever results.json it plants
    "monkeypatching": 4,  # loss_all_rows's own 4: the grader compares on its side
    "reads_secrets": 0,
    "always_equal": 0,
    "nan_float64_logits": 4,
    "fork_bomb": 4,  # stops at the pids cgroup's cap, killed at the call's timeout
    "conftest_and_sitecustomize": 0,
}
# A fork bomb is graded only where a pids cgroup caps it: without one (a grader that is not
# root, or no writable cgroup file system) nothing but RLIMIT_NPROC, counted over all of the
# user's processes, would stop it, and as root nothing would (see `autograder/cgroup.py`).
CAPPED = cgroup.parent_folder() is not None
GRADED_HOSTILE = [name for name in HOSTILE if CAPPED or name != "fork_bomb"]


def write_hostile(folder: Path, name: str) -> None:
    """Write submission `name` of HOSTILE into `folder`, whose grade-all results folder is
    `folder.parent / "gradebook_results"`."""
    base, top, end, extra = HOSTILE[name]
    target = folder / name
    target.mkdir()
    # The worst case: the attacker knows every path. Without the sandbox the child could write
    # into the other submissions' results (README: security), so it plants only in its own.
    results = folder.parent / "gradebook_results"
    names = sorted(GRADED_HOSTILE) if sandbox.sandbox_available() else []
    prelude = f"REPO = {str(REPO)!r}\nRESULTS = {str(results)!r}\nNAMES = {names!r}\n"
    for file in SUB_FILES:
        text = (base / file).read_text()
        text = text.replace("from __future__ import annotations\n", "")  # must come first
        text = prelude + top.get(file, "") + text + end.get(file, "")
        (target / file).write_text(text)
    for file, text in extra.items():
        (target / file).write_text(prelude + text)


@pytest.fixture(scope="module")
def hostile_graded(tmp_path_factory) -> Path:
    """The per-submission results of one `grade-all` run over the hostile corpus."""
    folder = tmp_path_factory.mktemp("hostile")
    submissions = folder / "submissions"
    submissions.mkdir()
    for name in GRADED_HOSTILE:
        write_hostile(submissions, name)
    done = subprocess.run(
        autograder("grade-all", str(submissions), "--out", str(folder / "gradebook.csv"))
        + ["--only", HOSTILE_ONLY, "--timeout-scale", "0.25", "--jobs", "2", "--device", "cpu"],
        cwd=REPO,
        env=grader_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # The planted results.json files: where the sandbox lets them land, the grader never
    # reads them (it reads only its child's reply files and writes its own results).
    planted = [p for p in submissions.rglob("results.json")]
    assert planted == [] or not sandbox.sandbox_available()
    return folder / "gradebook_results"


def test_hostile_submissions_get_their_verdicts_and_every_grading_completes(hostile_graded):
    scores = {}
    for name in GRADED_HOSTILE:
        results = json.loads((hostile_graded / name / "results.json").read_text())
        assert_results_schema(results)
        assert len(results["tests"]) == 3, name  # graded: no check was lost or added
        scores[name] = results["score"]
    assert scores == {name: EXPECTED_HOSTILE[name] for name in GRADED_HOSTILE}
    assert leftovers_of_dead_graders() == []  # no folder, cgroup or process of a child is left
    secrets = json.loads((hostile_graded / "reads_secrets" / "results.json").read_text())
    if sandbox.sandbox_available():  # the plain subprocess can read what the grader reads
        assert "LEAKED" not in secrets["output"]


@pytest.mark.skipif(not CAPPED, reason="no pids cgroup can be made here to cap a fork bomb")
def test_a_fork_bomb_stops_at_the_cap_and_is_killed_at_the_timeout(hostile_graded):
    results = json.loads((hostile_graded / "fork_bomb" / "results.json").read_text())
    failed = [t for t in results["tests"] if t["score"] < t["max_score"]]
    assert len(failed) == 1 and "did not finish within" in failed[0]["output"]
    assert "processes capped by a pids cgroup" in results["output"]
