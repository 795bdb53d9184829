"""Tests of learners/: interfaces, no query-label leak, learning on a small budget, the
benchmark command and Lake's challenge loader. Budget: a few minutes on 2 CPU cores.

Letters: B tasks per batch, K shots, N classes, 784 = 28 x 28 pixels.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data import LAKE_RUNS, OmniglotDataError, acquire_archive
from kit.episodes import sample_tasks
from kit.train import evaluate
from learners import LEARNERS, build_learner
from learners.benchmark import main
from learners.common import random_distortions, with_rotations
from learners.finetune import pretrain
from learners.fit import Budget, meta_train
from learners.lake import load_runs
from learners.results import format_table

from .conftest import REPO, omniglot_source


def small_learner(name: str, num_classes: int, num_shots: int) -> torch.nn.Module:
    """The learner with a narrower encoder (32 channels), to keep the tests fast."""
    options = {"channels": 32}
    if name == "finetune":
        options.update(num_pretrain_classes=200, steps=10)
    torch.manual_seed(0)
    return build_learner(name, num_classes, num_shots, **options)


def random_tasks(batch: int, num_shots: int, num_classes: int, seed: int = 0):
    """Tasks from the kit's sampler on random "drawings": `[B, K+1, N, 784]`, `[B, K+1, N, N]`."""
    rng = np.random.default_rng(seed)
    images = rng.random((30, 20, 784), dtype=np.float32)
    return (torch.from_numpy(a) for a in sample_tasks(images, num_classes, num_shots, batch, rng))


@pytest.mark.parametrize("name", list(LEARNERS))
@pytest.mark.parametrize("num_shots, num_classes", [(1, 3), (2, 5)])
def test_forward_gives_logits_of_shape_B_K1_N_N_and_leaves_inputs_unchanged(
    name, num_shots, num_classes
):
    """Does every learner map [B, K+1, N, 784] and [B, K+1, N, N] to [B, K+1, N, N] logits?"""
    model = small_learner(name, num_classes, num_shots)
    images, labels = random_tasks(4, num_shots, num_classes)
    images_before, labels_before = images.clone(), labels.clone()
    preds = model(images, labels)
    assert preds.shape == (4, num_shots + 1, num_classes, num_classes), (
        f"{name} returned {tuple(preds.shape)}, expected [B, K+1, N, N]"
    )
    assert torch.isfinite(preds).all(), f"{name} returned non-finite logits"
    assert torch.equal(images, images_before) and torch.equal(labels, labels_before), (
        f"{name} modified its inputs in place"
    )


@pytest.mark.parametrize("name", list(LEARNERS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_predictions_do_not_change_when_the_query_labels_change(name, mode):
    """Does any learner read the query labels (row K), in training or in evaluation mode?"""
    model = small_learner(name, 5, 2).train(mode == "train")
    images, labels = random_tasks(3, 2, 5)
    garbage = labels.clone()
    garbage[:, -1] = torch.roll(labels[:, -1], shifts=1, dims=-1)  # every query label wrong
    zeros = labels.clone()
    zeros[:, -1] = 0.0
    with torch.no_grad():
        reference = model(images, labels)
        for changed in (garbage, zeros):
            assert torch.allclose(model(images, changed), reference, atol=1e-5), (
                f"{name} ({mode} mode) changed its predictions when only the query labels "
                "changed: it reads labels[:, -1]; take labels from support_labels() only"
            )


@pytest.mark.parametrize("name", list(LEARNERS))
def test_loss_function_is_the_cross_entropy_of_the_query_row_only(name):
    """Is loss_function the mean query-row cross-entropy, blind to support rows, with gradient?"""
    model = small_learner(name, 4, 2)
    preds = torch.randn(3, 3, 4, 4, requires_grad=True)
    _, labels = random_tasks(3, 2, 4)
    loss = model.loss_function(preds, labels)
    expected = F.cross_entropy(preds[:, -1].reshape(-1, 4), labels[:, -1].reshape(-1, 4).argmax(-1))
    assert torch.allclose(loss, expected), f"{name}: loss {loss.item()} != {expected.item()}"
    changed = preds.detach().clone()
    changed[:, :-1] = torch.randn_like(changed[:, :-1])
    assert torch.allclose(model.loss_function(changed, labels), expected.detach())
    loss.backward()
    assert preds.grad[:, :-1].abs().sum() == 0 and preds.grad[:, -1].abs().sum() > 0


def test_rotations_add_three_rotated_copies_of_every_character():
    """Does with_rotations return [4C, D, 784]: the originals, then 90, 180, 270 degrees?"""
    images = np.random.default_rng(0).random((3, 20, 784), dtype=np.float32)
    rotated = with_rotations(images)
    assert rotated.shape == (12, 20, 784)
    assert np.array_equal(rotated[:3], images)
    quarter = np.rot90(images.reshape(3, 20, 28, 28), 1, axes=(2, 3)).reshape(3, 20, 784)
    assert np.array_equal(rotated[3:6], quarter)
    assert np.array_equal(with_rotations(rotated[9:12])[3:6], images)  # 270 + 90 = 360


def test_random_distortions_move_each_drawing_a_little_and_replay_with_the_seed(splits):
    """Each drawing its own small distortion: changed, still mostly the same ink, in frame."""
    drawings = torch.from_numpy(splits["train"].images[:10, :4].copy())  # [10, 4, 784]
    first = random_distortions(drawings, torch.Generator().manual_seed(0))
    again = random_distortions(drawings, torch.Generator().manual_seed(0))
    other = random_distortions(drawings, torch.Generator().manual_seed(1))
    assert first.shape == drawings.shape and first.dtype == drawings.dtype
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1
    moved = (first - drawings).abs().sum(-1)  # [10, 4]
    assert (moved > 0).all(), "a drawing was left as it was"
    ink, kept = drawings.sum(-1), first.sum(-1)  # [10, 4]
    assert ((kept / ink - 1).abs() < 0.3).all(), "a distortion lost or added much ink"

    # Blurred (a pixel's shift must not count), most like an original of its own character
    # among the 40 (10 characters): still recognisably that character (seeds 0-7: 90-97.5%;
    # a drawing turned by 90 degrees or replaced by another character's would be far below).
    def blurred(x: torch.Tensor) -> torch.Tensor:
        x = F.avg_pool2d(x.reshape(-1, 1, 28, 28), 5, stride=1, padding=2).reshape(-1, 784)
        return F.normalize(x, dim=-1)  # [M, 784]

    similarity = blurred(first) @ blurred(drawings).T  # [40, 40]: distorted x original
    character = similarity.argmax(1) // 4  # [40] the character of the most similar original
    assert (character == torch.arange(40) // 4).float().mean() >= 0.85


# Budgets that take each learner well past chance on 5-way 1-shot (measured: CNP 61% after 100
# steps, attention ~80% after 250 steps at lr 3e-4, fine-tuning 77% after 150 pretraining steps
# against 49% untrained; ConvMANN learns slowest: on 2-way, it leaves 50% near step 300 and
# reaches ~80% by step 400).
META_BUDGETS = {  # name: (N, steps, learning rate, accuracy to beat)
    "cnp": (5, 120, 1e-3, 0.40),
    "attention": (5, 250, 3e-4, 0.45),
    "conv_mann": (2, 500, 1e-3, 0.6),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(META_BUDGETS))
def test_each_meta_learner_beats_chance_clearly_after_a_short_training(name, splits):
    """Does each black-box learner, meta-trained briefly, beat chance on meta-test tasks?"""
    N, steps, learning_rate, threshold = META_BUDGETS[name]
    model = small_learner(name, N, 1)
    meta_train(
        model,
        splits["train"].images,
        N,
        1,
        Budget(seconds=1e9, max_steps=steps),
        batch_size=16,
        learning_rate=learning_rate,
        progress=False,
    )
    result = evaluate(model, splits["test"].images, N, 1, num_tasks=300, batch_size=100)
    assert result.accuracy > threshold, (
        f"{name} reached {result} on {N}-way 1-shot after {steps} steps; chance is {1 / N:.0%}"
    )


@pytest.mark.slow
def test_fine_tuning_after_pretraining_beats_chance_and_the_untrained_encoder(splits):
    """Does pretraining a classifier make per-task fine-tuning clearly better?"""
    model = small_learner("finetune", 5, 1)
    test = splits["test"].images
    untrained = evaluate(model, test, 5, 1, num_tasks=300, batch_size=100)
    pretrain(model, splits["train"].images[:200], seconds=1e9, max_steps=150, progress=False)
    trained = evaluate(model, test, 5, 1, num_tasks=300, batch_size=100)
    assert trained.accuracy > max(0.6, untrained.accuracy + 0.1), (
        f"fine-tuning after pretraining: {trained}; untrained encoder: {untrained}; chance 20%"
    )


def test_fine_tuning_all_layers_leaves_the_pretrained_weights_unchanged():
    """Does mode="all" fine-tune a copy, so that one task cannot leak into the next?"""
    model = small_learner("finetune", 3, 1)
    model.mode = "all"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images, labels = random_tasks(2, 1, 3)
    preds = model(images, labels)
    assert preds.shape == (2, 2, 3, 3)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), f"fine-tuning changed the pretrained {key}"


def lake_zip() -> Path:
    """Lake's all_runs.zip, acquired and verified by `data` into the default cache (from the
    tests' Omniglot source, or by download), where `load_runs()` finds it too."""
    try:
        return acquire_archive(LAKE_RUNS, source=omniglot_source(), progress=False)
    except OmniglotDataError as error:
        pytest.skip(f"no all_runs.zip: {error}")


def test_lake_runs_are_20_tasks_of_20_way_1_shot_processed_like_the_training_data(omniglot):
    """Are the 20 runs read from the zip as kit tasks, labels right, drawings as data/ does?"""
    path = lake_zip()
    runs = load_runs(path)
    assert np.array_equal(load_runs().images, runs.images), "the acquired copy is the same zip"
    assert runs.images.shape == (20, 2, 20, 784) and runs.labels.shape == (20, 2, 20, 20)
    assert np.array_equal(runs.labels[:, 0], np.broadcast_to(np.eye(20), (20, 20, 20)))
    assert (runs.labels[:, 1].sum(axis=1) == 1).all(), "each class once in each run's test row"
    assert 0.0 <= runs.images.min() and runs.images.max() <= 1.0
    # Ink is 1.0: a drawing is mostly paper, as in the training data.
    assert abs(runs.images.mean() - omniglot.images.mean()) < 0.05
    # The labels pair each test drawing with its character: raw-pixel nearest neighbour, far
    # from a good classifier, still beats chance (Lake et al. report about 21% accuracy).
    support, query = runs.images[:, 0], runs.images[:, 1]  # [20, 20, 784] each
    distances = ((query[:, :, None] - support[:, None]) ** 2).sum(-1)  # [20, 20, 20]
    accuracy = (distances.argmin(-1) == runs.labels[:, 1].argmax(-1)).mean()
    assert accuracy > 0.15, f"pixel 1-NN accuracy {accuracy:.2f}: class_labels.txt misread?"
    with zipfile.ZipFile(path) as zf:
        assert "run01/class_labels.txt" in zf.namelist()


def test_quick_benchmark_runs_end_to_end_and_prints_the_table(tmp_path, splits, capsys):
    """Does `--quick` train, evaluate and record two learners on 5w1s and Lake's challenge?"""
    lake_zip()
    out = tmp_path / "results.json"
    argv = ["--quick", "--learners", "cnp,finetune", "--tasks", "5w1s,lake", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert {(r["learner"], r["task"]) for r in runs} == {
        (learner, task) for learner in ("cnp", "finetune") for task in ("5w1s", "lake")
    }
    for run in runs:
        assert run["quick"] and run["steps"] <= 10
        if run["task"] == "lake":
            assert 0.0 <= run["error_rate"] <= 1.0 and run["test_items"] == 400
        else:
            assert 0.0 <= run["accuracy"] <= 1.0 and run["test_tasks"] == 100
    capsys.readouterr()
    assert main(["--table", str(out)]) == 0
    table = capsys.readouterr().out
    assert "not measured yet" in table and "99.07" in table and "8.0%" in table
    assert table.strip() == format_table(runs)
    # Several files make one table; a later file wins for the same learner and setting.
    later = dict(runs[0], accuracy=0.5, error_rate=0.5, date="later")
    (tmp_path / "later.json").write_text(json.dumps({"runs": [later]}))
    assert main(["--table", str(out), str(tmp_path / "later.json")]) == 0
    merged = capsys.readouterr().out
    row = f"| {later['learner']}{' (quick)' if later['quick'] else ''} | {later['task']} |"
    assert "| later |" in merged and merged.count(row) == table.count(row) == 1


def run_benchmark_command(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "learners.benchmark", *args]
    return subprocess.run(command, check=False, cwd=REPO, capture_output=True, text=True)


def test_benchmark_help_and_errors_are_one_line():
    """Does the command answer --help, and reject a bad flag or a missing file in one line?"""
    done = run_benchmark_command("--help")
    assert done.returncode == 0 and "(default: 900)" in done.stdout
    done = run_benchmark_command("--learners", "nope")
    assert done.returncode == 2 and "unknown learner 'nope'" in done.stderr
    done = run_benchmark_command("--table", "no/such.json")
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "error:" in done.stderr
