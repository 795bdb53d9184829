"""The autograder, tested the way pytest tests its plugins: real submissions, the grader run as a
subprocess, its results.json and printed feedback inspected.

`tests/submissions/<name>/` is a corpus of broken submissions, each a compact copy of solutions/
with ONE classic bug (marked `# BUG`). Every grading this module needs is started once, two at
a time, by the session fixture `gradings`: the reference (full, accuracy checks included), the
stubs, and each corpus folder with the checks that matter for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from autograder import sandbox
from autograder.checks.hidden.thresholds import CHECKS
from autograder.evaluation import meta_test_accuracy
from autograder.feedback import BUGS
from autograder.identity import SHUFFLE_FALSE_FAILURE, decode, identity_images
from autograder.runner import ChildError, ChildSession
from kit.release import PUBLIC_CHECK_FILES, PUBLIC_CHECKS, RELEASE, stale_files

from .conftest import omniglot_source

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "submissions"
SCHEMA_KEYS = {"score", "execution_time", "output", "tests"}
TEST_KEYS = {"name", "score", "max_score", "status", "output", "visibility"}


@dataclass(frozen=True)
class Bug:
    """A corpus folder: the grader options to run it with and the checks it must lose, each
    with the key of the feedback message that must name its bug."""

    args: tuple[str, ...]
    loses: dict[str, str]


ACCURACY_K1N2 = "accuracy and K1 and graders"
BROKEN = {
    "query_not_shuffled": Bug(
        ("--public",), {"the query row is shuffled uniformly": "query_not_shuffled"}
    ),
    "class_major_reshape": Bug(
        ("--public",), {"support predictions do not depend on the query row": "class_major"}
    ),
    "support_query_overlap": Bug(
        ("--public",), {"query drawings are never support drawings": "support_query_overlap"}
    ),
    "loss_all_rows": Bug(
        ("--public",),
        {
            "loss equals the cross entropy of the query row": "loss_value",
            "loss ignores the support rows": "loss_all_rows",
        },
    ),
    "detached_loss": Bug(
        ("--public",), {"loss is a scalar tensor that carries gradient": "loss_detached"}
    ),
    "numpy_loss": Bug(
        ("--public",), {"loss is a scalar tensor that carries gradient": "loss_detached"}
    ),
    "query_labels_leaked": Bug(
        ("--public",), {"predictions ignore the query labels": "label_leak"}
    ),
    "labels_zeroed_in_place": Bug(
        ("--public",), {"forward leaves its inputs unchanged": "inputs_modified"}
    ),
    "global_rng": Bug(("--public",), {"the same seed gives the same tasks": "rng_not_self_rng"}),
    "wrong_output_shape": Bug(
        ("--public",),
        {
            "forward returns logits of the documented shape": "forward_shape",
            "predictions ignore the query labels": "forward_shape",
            "support predictions do not depend on the query row": "forward_shape",
        },
    ),
    "accuracy_at_chance": Bug(
        ("--only", f"test_model or {ACCURACY_K1N2}", "--accuracy-attempts", "1"),
        {"the trained mann reaches the accuracy threshold": "accuracy_chance"},
    ),
}
MODEL_CHECKS = (
    "forward returns logits of the documented shape",
    "predictions ignore the query labels",
    "forward leaves its inputs unchanged",
    "support predictions do not depend on the query row",
    "loss equals the cross entropy of the query row",
    "loss ignores the support rows",
    "loss is a scalar tensor that carries gradient",
)
GRADINGS = {
    "solutions": (REPO / "solutions", ()),
    "assignment": (REPO / "assignment", ()),
    **{name: (CORPUS / name, bug.args) for name, bug in BROKEN.items()},
    "raises_at_import": (CORPUS / "raises_at_import", ("--public",)),
    "prints_flood": (CORPUS / "prints_flood", ("--public",)),
    "hangs_in_forward": (
        CORPUS / "hangs_in_forward",
        ("--only", "documented_shape and K1 or loss_equals", "--timeout-scale", "0.25"),
    ),
    "exits_in_sample": (CORPUS / "exits_in_sample", ("--only", "same_seed or loss_equals")),
}


@dataclass
class Graded:
    returncode: int
    stdout: str
    stderr: str
    results: dict | None

    def outcomes(self) -> dict[str, str]:
        """Check name without its parameters -> 'failed' if any instance failed, else 'passed'."""
        out: dict[str, str] = {}
        for test in self.results["tests"]:
            name = test["name"].split(" [")[0]
            out[name] = "failed" if test["status"] == "failed" else out.get(name, "passed")
        return out

    def messages(self, name: str) -> list[str]:
        return [t["output"] for t in self.results["tests"] if t["name"].split(" [")[0] == name]


def run_grader(folder: Path, args: tuple[str, ...], out: Path) -> Graded:
    env = dict(os.environ)
    source = omniglot_source()
    if source is not None:
        env["OMNIGLOT_SOURCE"] = str(source)
    command = [sys.executable, "-m", "autograder", "grade", str(folder), "--out", str(out)]
    done = subprocess.run(
        command + ["--device", "cpu", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    results = json.loads(out.read_text()) if out.is_file() else None
    return Graded(done.returncode, done.stdout, done.stderr, results)


@pytest.fixture(scope="session")
def gradings(splits, tmp_path_factory) -> dict[str, Graded]:
    """Every grading of this module, two at a time (the machine has two cores); the reference's
    full grading, the expensive one, starts first."""
    folder = tmp_path_factory.mktemp("gradings")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_grader, path, args, folder / f"{name}.json")
            for name, (path, args) in GRADINGS.items()
        }
        return {name: future.result() for name, future in futures.items()}


def assert_gradescope_schema(results: dict) -> None:
    assert set(results) == SCHEMA_KEYS
    assert results["tests"], "no tests in results.json"
    for test in results["tests"]:
        assert set(test) == TEST_KEYS, test
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
        assert 0 <= test["score"] <= test["max_score"]
    assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]))


@pytest.mark.slow
def test_the_reference_solution_gets_full_marks(gradings):
    graded = gradings["solutions"]
    assert graded.returncode == 0, graded.stderr
    assert_gradescope_schema(graded.results)
    failed = [t["name"] for t in graded.results["tests"] if t["status"] != "passed"]
    assert failed == [], [t["output"] for t in graded.results["tests"] if t["status"] != "passed"]
    assert graded.results["score"] == sum(t["max_score"] for t in graded.results["tests"])
    names = " ".join(t["name"] for t in graded.results["tests"])
    for budget in (check.budget for check in CHECKS):  # accuracy: both samplers, every budget
        for sampler in ("graders-tasks", "own-sampler"):
            assert f"K{budget.num_shots}-N{budget.num_classes}-{sampler}" in names


@pytest.mark.slow
def test_the_untouched_stubs_score_zero_and_grading_completes(gradings):
    graded = gradings["assignment"]
    assert graded.returncode == 0, graded.stderr
    assert_gradescope_schema(graded.results)
    assert graded.results["score"] == 0
    assert all(t["status"] == "failed" for t in graded.results["tests"])
    assert all("NotImplementedError" in t["output"] for t in graded.results["tests"])
    assert "score: 0 / " in graded.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_submission_loses_exactly_the_checks_of_its_bug(gradings, name):
    graded, bug = gradings[name], BROKEN[name]
    assert graded.returncode == 0, graded.stderr
    assert_gradescope_schema(graded.results)
    lost = {check for check, outcome in graded.outcomes().items() if outcome == "failed"}
    assert lost == set(bug.loses)
    for check, key in bug.loses.items():
        messages = [m for m in graded.messages(check) if m]
        assert messages and all(BUGS[key] in m for m in messages), messages
        assert BUGS[key][:50] in graded.stdout.replace("\n", " ").replace("  ", " ")


@pytest.mark.slow
def test_a_submission_that_raises_at_import_loses_only_what_uses_that_file(gradings):
    graded = gradings["raises_at_import"]
    assert graded.returncode == 0, graded.stderr
    lost = {check for check, outcome in graded.outcomes().items() if outcome == "failed"}
    assert lost == set(MODEL_CHECKS)
    for check in MODEL_CHECKS:
        for message in graded.messages(check):
            assert "models.py raised at import: NameError" in message
            assert "line 9, in <module>" in message


@pytest.mark.slow
def test_a_flood_of_printing_costs_nothing_and_is_truncated(gradings):
    graded = gradings["prints_flood"]
    assert graded.returncode == 0, graded.stderr
    assert all(t["status"] == "passed" for t in graded.results["tests"])
    output = graded.results["output"]
    assert "Your code printed" in output and "sampling a task" in output
    assert "bytes of output left out" in output
    assert len(output) < 12_000
    assert len(graded.stdout) < 20_000  # the flood never reaches the grader's own output


@pytest.mark.slow
def test_a_hang_is_stopped_and_the_next_check_still_runs(gradings):
    graded = gradings["hangs_in_forward"]
    assert graded.returncode == 0, graded.stderr
    assert graded.outcomes() == {
        "forward returns logits of the documented shape": "failed",
        "loss equals the cross entropy of the query row": "passed",
    }
    (message,) = graded.messages("forward returns logits of the documented shape")
    assert "MANN.forward did not finish within 15 s" in message


@pytest.mark.slow
def test_a_process_exit_costs_only_the_check_that_caused_it(gradings):
    graded = gradings["exits_in_sample"]
    assert graded.returncode == 0, graded.stderr
    assert graded.outcomes() == {
        "the same seed gives the same tasks": "failed",
        "loss equals the cross entropy of the query row": "passed",
    }
    (message,) = graded.messages("the same seed gives the same tasks")
    assert "exited with code 3" in message


def test_grading_a_missing_folder_is_a_grader_error(tmp_path):
    out = tmp_path / "results.json"
    graded = run_grader(tmp_path / "nowhere", (), out)
    assert graded.returncode == 1
    assert graded.stderr.startswith("error: could not grade:")
    assert len(graded.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_an_only_pattern_that_matches_nothing_is_a_grader_error(tmp_path):
    graded = run_grader(REPO / "solutions", ("--only", "no_such_check"), tmp_path / "r.json")
    assert graded.returncode == 1
    assert "no check matches --only 'no_such_check'" in graded.stderr
    assert graded.results is None


def test_help_documents_every_option():
    done = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    for flag in ("--out", "--device", "--only", "--public", "--seed", "--timeout-scale"):
        assert flag in done.stdout
    assert "(default: results.json)" in done.stdout


def test_the_release_ships_the_public_checks_and_nothing_hidden():
    assert stale_files() == {}
    for name in PUBLIC_CHECK_FILES:
        shipped = RELEASE / "public_checks" / name
        assert shipped.read_text() == (PUBLIC_CHECKS / name).read_text()
    shipped_text = "\n".join(p.read_text() for p in RELEASE.rglob("*.py"))
    assert "thresholds" not in shipped_text and "EVAL_SEED" not in shipped_text
    assert not list(RELEASE.rglob("test_accuracy.py"))


def test_identity_images_decode_exactly_and_reject_modified_images():
    table = identity_images()
    character, drawing = decode(table[[3, 5], [2, 0]], table)
    assert character.tolist() == [3, 5] and drawing.tolist() == [2, 0]
    blended = (table[1, 1] + table[2, 2]) / 2
    scaled = table[4, 3] * 0.5
    assert decode(np.stack([blended, scaled]), table)[0].tolist() == [-1, -1]


def test_the_shuffle_test_false_failure_rate_is_below_one_in_a_million():
    assert SHUFFLE_FALSE_FAILURE < 1e-6


def test_meta_test_query_labels_never_reach_the_child(splits):
    """The arrays sent for evaluation carry zeros in the query row, and the accuracy is computed
    from the returned predictions against the true labels."""
    sent = {}

    class EchoChild:
        """Returns the query labels' true classes only if they were leaked, else all-zeros."""

        def call(self, op, what, timeout, arrays):
            sent.update(arrays)
            return type("Reply", (), {"arrays": {"preds": arrays["labels"].copy()}})()

    budget = CHECKS[0].budget
    accuracy = meta_test_accuracy(
        EchoChild(), splits["test"].images, budget.num_shots, budget.num_classes, 1000, 0, "echo"
    )
    K = budget.num_shots
    assert (sent["labels"][:, K] == 0).all()
    assert (sent["labels"][:, :K].sum(-1) == 1).all()
    # Echoing the zeroed labels back predicts class 0 for every query: chance, not 100%.
    assert 0.4 < accuracy < 0.6


# The plain subprocess always; the bubblewrap sandbox where it works (see README: security).
ISOLATION_MODES = ["rlimit"] + (["sandbox"] if sandbox.sandbox_available() else [])


@pytest.mark.parametrize("mode", ISOLATION_MODES)
def test_a_child_killed_on_timeout_takes_its_whole_process_group(tmp_path, monkeypatch, mode):
    """A submission that starts a helper process and hangs: the helper dies with it."""
    if mode == "rlimit":
        monkeypatch.setattr(sandbox, "sandbox_available", lambda: False)
    folder = tmp_path / "spawner"
    folder.mkdir()
    marker = f"{300 + os.getpid() % 1000 / 1000:.3f}"  # a sleep time no other process uses
    (folder / "models.py").write_text(
        "import subprocess, time\n"
        "class MANN:\n"
        "    def __init__(self, *args):\n"
        f"        subprocess.Popen(['sleep', '{marker}'])\n"
        "        print('helper started', flush=True)\n"
        "        time.sleep(300)\n"
    )
    session = ChildSession(folder, timeout_scale=1.0)
    with session, pytest.raises(ChildError, match="did not finish within 10 s"):
        session.call("forward", "MANN", timeout=10, N=2, K=1, seed=0, pairs=0)
    assert "helper started" in session.outputs[-1]
    for _ in range(100):  # SIGKILL is immediate; reaping the orphan by init may take a moment
        alive = [pid for pid in sleepers(marker) if "Z" not in state_of(pid)]
        if not alive:
            break
        time.sleep(0.05)
    assert alive == []


@pytest.mark.skipif(not sandbox.sandbox_available(), reason="bubblewrap does not work here")
def test_a_sandboxed_child_is_an_unprivileged_user_without_capabilities(tmp_path):
    """uid and gid 65534, no groups, no capabilities; when the grader is root, really so (no
    user namespace: the kernel's own ids), so RLIMIT_NPROC applies to it."""
    folder = tmp_path / "whoami"
    folder.mkdir()
    (folder / "models.py").write_text(
        "import os\n"
        "lines = open('/proc/self/status').read().splitlines()\n"
        "status = dict(line.split(':\\t') for line in lines)\n"
        "uid_map = open('/proc/self/uid_map').read().split()\n"
        "print('ids', os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), status['CapEff'],"
        " status['CapPrm'], status['NoNewPrivs'], uid_map, flush=True)\n"
        "raise RuntimeError('done')\n"
    )
    session = ChildSession(folder)
    with session, pytest.raises(ChildError, match="done"):
        session.call("forward", "MANN", timeout=30, N=2, K=1, seed=0, pairs=0)
    line = next(s for s in session.outputs[-1].splitlines() if s.startswith("ids "))
    uid_map = "['0', '0', '4294967295']"  # the initial namespace: ids are the kernel's own
    expected = "ids 65534 65534 65534 [] 0000000000000000 0000000000000000 "
    if os.geteuid() == 0:
        assert line == expected + "1 " + uid_map
    else:  # a user namespace maps 65534 to the grader's user
        assert line.startswith(expected) and uid_map not in line


def sleepers(marker: str) -> list[int]:
    """Processes running `sleep <marker>`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes() == f"sleep\0{marker}\0".encode():
                found.append(int(cmdline.parent.name))
        except OSError:
            pass
    return found


def state_of(pid: int) -> str:
    """The process state letter from /proc (Z: a zombie, already dead)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""
