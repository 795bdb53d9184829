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
from autograder.feedback import BUGS, OUTLINE, feedback_lines, not_judged
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
    """A corpus folder: the grader options to run it with, the checks it must lose, each with
    the message (a `BUGS` text or a `not_judged` root cause) every instance must carry, and the
    points it loses in all."""

    args: tuple[str, ...]
    loses: dict[str, str]
    points_lost: float | None = None


def lost(**checks: str) -> dict[str, str]:
    """{check: message}: `key` names `BUGS[key]`; `root:<title>` the root cause `title`."""
    return {
        check.replace("_", " "): not_judged(key[5:]) if key.startswith("root:") else BUGS[key]
        for check, key in checks.items()
    }


PUBLIC = ("--public",)
TYPE_CHECK = "sample returns float32 arrays of the documented shapes"
COLUMN_CHECK = "every support column holds one character"
SHAPE_CHECK = "forward returns logits of the documented shape"
ACCURACY_K1N2 = "accuracy and K1 and graders"
BROKEN = {
    # -- the sampler ------------------------------------------------------------------------
    "query_not_shuffled": Bug(
        PUBLIC, lost(the_query_row_is_shuffled_uniformly="query_not_shuffled"), 3
    ),
    "support_query_overlap": Bug(
        PUBLIC, lost(query_drawings_are_never_support_drawings="support_query_overlap"), 2
    ),
    "global_rng": Bug(PUBLIC, lost(the_same_seed_gives_the_same_tasks="rng_not_self_rng"), 2),
    # A container slip costs the type check's points only; the logic is judged on a copy.
    "sampler_float64_labels": Bug(PUBLIC, {TYPE_CHECK: BUGS["sample_dtype"]}, 4),
    "sampler_int_one_hots": Bug(PUBLIC, {TYPE_CHECK: BUGS["sample_dtype"]}, 4),
    "sampler_returns_tensors": Bug(PUBLIC, {TYPE_CHECK: BUGS["sample_tensors"]}, 4),
    "sampler_returns_lists": Bug(
        PUBLIC,
        {
            TYPE_CHECK: BUGS["sample_shape"],
            "a dataloader stacks tasks into batches of the documented shapes": not_judged(
                TYPE_CHECK
            ),
        },
        5,
    ),
    "classes_with_replacement": Bug(
        PUBLIC, lost(the_n_classes_are_distinct_characters="classes_repeat"), 2
    ),
    "drawings_with_replacement": Bug(
        PUBLIC,
        lost(
            support_drawings_within_a_class_are_distinct="drawings_repeat",
            query_drawings_are_never_support_drawings="support_query_overlap",
        ),
        3,
    ),
    "per_class_list_reshaped": Bug(
        PUBLIC,
        lost(
            every_support_column_holds_one_character="column_mixes_characters",
            the_query_row_holds_one_drawing_of_each_class=f"root:{COLUMN_CHECK}",
            query_labels_match_query_images=f"root:{COLUMN_CHECK}",
            the_query_row_is_shuffled_uniformly=f"root:{COLUMN_CHECK}",
        ),
        9,
    ),
    "one_permutation_every_row": Bug(
        PUBLIC,
        lost(
            support_rows_keep_the_fixed_class_order="support_rows_shuffled",
            the_query_row_is_shuffled_uniformly="one_permutation_every_row",
        ),
        5,
    ),
    "every_row_shuffled": Bug(
        PUBLIC,
        lost(
            every_support_column_holds_one_character="support_rows_shuffled",
            support_rows_keep_the_fixed_class_order="support_rows_shuffled",
        ),
        4,
    ),
    "whole_grid_shuffled": Bug(
        PUBLIC,
        lost(
            every_support_column_holds_one_character="support_rows_shuffled",
            support_rows_keep_the_fixed_class_order="support_rows_shuffled",
        ),
        4,
    ),
    "labels_by_position": Bug(
        PUBLIC, lost(query_labels_match_query_images="labels_by_position"), 2
    ),
    # -- forward ----------------------------------------------------------------------------
    "class_major_reshape": Bug(
        PUBLIC, lost(support_predictions_do_not_depend_on_the_query_row="class_major"), 3
    ),
    "bidirectional_lstm": Bug(
        PUBLIC, lost(support_predictions_do_not_depend_on_the_query_row="bidirectional"), 3
    ),
    "query_labels_leaked": Bug(PUBLIC, lost(predictions_ignore_the_query_labels="label_leak"), 3),
    "labels_zeroed_in_place": Bug(
        PUBLIC, lost(forward_leaves_its_inputs_unchanged="inputs_modified"), 2
    ),
    "labels_zeroed_through_view": Bug(
        PUBLIC, lost(forward_leaves_its_inputs_unchanged="inputs_modified"), 2
    ),
    "labels_zeroed_and_restored": Bug(
        PUBLIC, lost(forward_leaves_its_inputs_unchanged="inputs_modified_restored"), 2
    ),
    "wrong_output_shape": Bug(
        PUBLIC,
        {
            SHAPE_CHECK: BUGS["forward_shape"],
            "predictions ignore the query labels": not_judged(SHAPE_CHECK),
            "support predictions do not depend on the query row": not_judged(SHAPE_CHECK),
            "forward returns logits not probabilities": not_judged(SHAPE_CHECK),
        },
        11,
    ),
    "softmax_in_forward": Bug(
        PUBLIC, lost(forward_returns_logits_not_probabilities="softmax_in_forward"), 1
    ),
    "cpu_tensor_in_forward": Bug(
        PUBLIC, lost(forward_creates_its_tensors_on_the_inputs_device="device_mismatch"), 1
    ),
    "float64_logits": Bug(PUBLIC, {}, 0),
    # Run in float64 by the child, so only the output check (and the device check: a tensor
    # made from NumPy is on the CPU) is lost.
    "float64_tensor_in_forward": Bug(
        PUBLIC,
        {
            SHAPE_CHECK: BUGS["dtype_mismatch"],
            "forward creates its tensors on the inputs device": BUGS["device_mismatch"],
        },
        5,
    ),
    # -- loss_function ----------------------------------------------------------------------
    "loss_all_rows": Bug(
        PUBLIC,
        lost(
            loss_equals_the_cross_entropy_of_the_query_row="root:loss ignores the support rows",
            loss_ignores_the_support_rows="loss_all_rows",
        ),
        4,
    ),
    "loss_on_3d_query_block": Bug(
        PUBLIC, lost(loss_equals_the_cross_entropy_of_the_query_row="loss_3d"), 2
    ),
    "label_argmax_wrong_axis": Bug(
        PUBLIC, lost(loss_equals_the_cross_entropy_of_the_query_row="loss_target_axis"), 2
    ),
    "loss_not_reduced": Bug(
        PUBLIC, lost(loss_is_a_scalar_tensor_that_carries_gradient="loss_not_reduced"), 2
    ),
    "detached_loss": Bug(
        PUBLIC, lost(loss_is_a_scalar_tensor_that_carries_gradient="loss_detached"), 2
    ),
    "numpy_loss": Bug(
        PUBLIC, lost(loss_is_a_scalar_tensor_that_carries_gradient="loss_detached"), 2
    ),
    "loss_one_element_tensor": Bug(PUBLIC, {}, 0),
    # -- accuracy (hidden) ------------------------------------------------------------------
    "accuracy_at_chance": Bug(
        ("--only", f"test_model or {ACCURACY_K1N2}", "--accuracy-attempts", "1"),
        lost(the_trained_mann_reaches_the_accuracy_threshold="accuracy_chance"),
    ),
}
MODEL_CHECKS = (
    "forward returns logits of the documented shape",
    "forward returns logits not probabilities",
    "forward creates its tensors on the inputs device",
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


# The gradings each test reads (a corpus test: its parameter's), so that a -k selection
# grades only what it needs.
READS = {
    "test_the_reference_solution_gets_full_marks": "solutions",
    "test_the_untouched_stubs_score_zero_and_grading_completes": "assignment",
    "test_a_submission_that_raises_at_import_loses_only_what_uses_that_file": "raises_at_import",
    "test_a_flood_of_printing_costs_nothing_and_is_truncated": "prints_flood",
    "test_a_hang_is_stopped_and_the_next_check_still_runs": "hangs_in_forward",
    "test_a_process_exit_costs_only_the_check_that_caused_it": "exits_in_sample",
}


@pytest.fixture(scope="session")
def gradings(request, splits, tmp_path_factory) -> dict[str, Graded]:
    """Every grading the selected tests read, two at a time (the machine has two cores); the
    reference's full grading, the expensive one, starts first."""
    needed = set()
    for item in request.session.items:
        name = getattr(item, "originalname", item.name)
        if name == "test_a_broken_submission_loses_exactly_the_checks_of_its_bug":
            needed.add(item.callspec.params["name"])
        elif name in READS:
            needed.add(READS[name])
    folder = tmp_path_factory.mktemp("gradings")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_grader, path, args, folder / f"{name}.json")
            for name, (path, args) in GRADINGS.items()
            if name in needed
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
    # One feedback line per unimplemented function (_sample, forward, loss_function).
    assert graded.stdout.count("is not implemented yet (it raises NotImplementedError)") == 3


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_a_broken_submission_loses_exactly_the_checks_of_its_bug(gradings, name):
    graded, bug = gradings[name], BROKEN[name]
    assert graded.returncode == 0, graded.stderr
    assert_gradescope_schema(graded.results)
    failed = {check for check, outcome in graded.outcomes().items() if outcome == "failed"}
    assert failed == set(bug.loses)
    for check, message in bug.loses.items():
        messages = [m for m in graded.messages(check) if m]
        assert messages and all(message in m for m in messages), messages
        assert " ".join(message[:50].split()) in " ".join(graded.stdout.split())
    if bug.points_lost is not None:
        total = sum(t["max_score"] for t in graded.results["tests"])
        assert total - graded.results["score"] == bug.points_lost


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


def test_checks_failed_by_one_stub_share_one_feedback_line():
    @dataclass
    class Failed:
        name: str
        message: str

    stub = "raised NotImplementedError: not implemented yet (models.py, line 58, in forward)"
    lines = feedback_lines(
        [
            Failed("predictions ignore the query labels", f"MANN.forward {stub}"),
            Failed("loss ignores the support rows", "loss over all rows: ..."),
            Failed("forward leaves its inputs unchanged", f"MANN.forward {stub}"),
        ]
    )
    stub_line = "- forward in models.py is not implemented yet (it raises NotImplementedError): "
    assert [" ".join(line.split()) for line in lines] == [
        stub_line + "2 checks wait for it",
        "- loss ignores the support rows: loss over all rows: ...",
    ]


def test_feedback_at_the_outline_hint_level_shows_no_code(tmp_path):
    graded = run_grader(
        CORPUS / "query_not_shuffled",
        ("--public", "--only", "shuffled", "--hints", "outline"),
        tmp_path / "results.json",
    )
    assert graded.returncode == 0, graded.stderr
    (message,) = graded.messages("the query row is shuffled uniformly")
    assert message.startswith(OUTLINE["query_not_shuffled"])
    assert "permutation(" not in message and "permutation(" in BUGS["query_not_shuffled"]


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
    for flag in ("--out", "--device", "--only", "--public", "--seed", "--timeout-scale", "--hints"):
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
