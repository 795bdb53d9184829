"""Tests of `kit.train` and `kit.step`: a short real training run, the CLI and its run folder,
`evaluate`, the training recipe (LSTM init, schedule, clipping) and divergence.

Letters: B tasks per batch, K shots, N classes. Every config here names the values it relies
on instead of taking `TrainConfig`'s defaults, which may be retuned.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import itertools
import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import kit.episodes
from kit.episodes import sample_tasks
from kit.step import Diverged, Recipe, init_lstms, make_optimizer, train_step
from kit.submission import load_submission
from kit.train import TrainConfig, evaluate, main, parse_args, train

from . import episode_checks as checks
from .conftest import REPO, omniglot_source

# A tiny run: enough to see every moving part, far too short to learn.
TINY = TrainConfig(
    num_shots=1,
    num_classes=2,
    hidden_dim=32,
    batch_size=16,
    learning_rate=3e-3,
    init="orthogonal",
    forget_bias=1.0,
    warmup_steps=2,
    schedule="cosine",
    clip_norm=1.0,
    steps=6,
    eval_every=3,
    val_tasks=40,
    test_tasks=40,
    seed=0,
    device="cpu",
    code="solutions",
    sampler="batched",
    num_workers=0,
)


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m kit.train ARGS` in the repo, with the test session's data source."""
    env = dict(os.environ)
    source = omniglot_source()
    if source is not None:
        env["OMNIGLOT_SOURCE"] = str(source)
    return subprocess.run(
        [sys.executable, "-m", "kit.train", *args],
        cwd=REPO,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_a_short_training_run_learns_well_above_chance(splits):
    """Does the reference MANN, trained with the kit's recipe, learn 1-shot 2-way tasks of
    unseen characters in 300 steps?

    Measured with this exact config (seed 0, 2-core CPU, torch 2.13, 2 threads): meta-val
    accuracy 0.642 +/- 0.018 over 1000 tasks (with PyTorch's default init and Adam 1e-3 it was
    0.600 +/- 0.024). The threshold 0.60 leaves over two confidence half-widths of margin;
    chance is 0.5, and a change that breaks learning shows as accuracy near it.
    """
    config = replace(TINY, hidden_dim=128, batch_size=128, warmup_steps=100, steps=300,
                     eval_every=300, val_tasks=1000, test_tasks=100, seed=0)  # fmt: skip
    result = train(config, splits=splits, progress=False)
    accuracy = result.history[-1]["val_accuracy"]
    assert accuracy > 0.60, f"meta-val accuracy {accuracy:.3f} after 300 steps (chance 0.5)"


def test_the_same_seed_gives_identical_metrics(splits):
    first = train(TINY, splits=splits, progress=False)
    second = train(TINY, splits=splits, progress=False)
    strip = [{k: v for k, v in row.items() if k != "train_seconds"} for row in first.history]
    assert strip == [
        {k: v for k, v in row.items() if k != "train_seconds"} for row in second.history
    ]
    assert first.test == second.test
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name


def test_another_seed_gives_other_metrics(splits):
    first = train(TINY, splits=splits, progress=False)
    other = train(replace(TINY, seed=1), splits=splits, progress=False)
    assert first.history[0]["train_loss"] != other.history[0]["train_loss"]


def test_training_from_the_generator_with_two_workers_runs(splits):
    """`--sampler generator --num-workers 2`: the DataGenerator feeds training through workers."""
    result = train(replace(TINY, sampler="generator", num_workers=2), splits=splits, progress=False)
    assert [row["step"] for row in result.history] == [3, 6]
    assert all(math.isfinite(row["train_loss"]) for row in result.history)
    assert 0.0 <= result.test.accuracy <= 1.0


def test_dry_run_writes_a_complete_run_folder(tmp_path: Path):
    """Does `--dry-run` write metrics.csv, summary.json, learning_curve.png, checkpoint.pt?"""
    out = tmp_path / "run"
    result = run_cli("--dry-run", "--out", str(out), "--no-progress", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "meta-test accuracy" in result.stdout

    with open(out / "metrics.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["step"]) for row in rows] == [10, 20]
    assert {"train_loss", "val_accuracy", "val_ci95", "train_seconds"} <= set(rows[0])

    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert 0.0 < summary["test"]["ci95"] < 0.5
    assert summary["test"]["num_tasks"] == 50 and summary["steps"] == 20

    png = out / "learning_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        image.verify()

    checkpoint = torch.load(out / "checkpoint.pt", map_location="cpu")
    config = checkpoint["config"]
    assert config == summary["config"]
    model = load_submission("solutions").models.MANN(
        config["num_classes"], config["num_shots"], config["hidden_dim"]
    )
    model.load_state_dict(checkpoint["model"])  # strict: every weight, nothing else


def error_line(capsys: pytest.CaptureFixture, *args: str) -> str:
    """Run `kit.train.main(ARGS)`, which must fail with exit 1; return its one-line error.

    In-process (what `python -m kit.train` does is `sys.exit(main())`), so that each case costs
    no interpreter start; `--dry-run` and `--help` below go through a real subprocess.
    """
    __tracebackhide__ = True
    assert main([*args, "--dry-run", "--no-progress", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), f"not one error line: {err!r}"
    return err


def test_code_assignment_fails_with_one_line_naming_the_stub(splits, capsys, tmp_path):
    """The released stubs are not implemented: one clear line and exit 1, no traceback."""
    err = error_line(capsys, "--code", "assignment", "--out", str(tmp_path / "run"))
    assert "_sample()" in err and "assignment/load_data.py" in err
    assert not (tmp_path / "run").exists(), "a failed run must leave no run folder"


def test_code_assignment_with_the_batched_sampler_names_forward(splits, capsys):
    err = error_line(capsys, "--code", "assignment", "--sampler", "batched")
    assert "forward()" in err and "assignment/models.py" in err


def test_an_unimplemented_sample_in_a_worker_is_named_too(splits, capsys):
    """A DataLoader worker re-raises the stub's error as text: is the function still named?"""
    err = error_line(capsys, "--code", "assignment", "--num-workers", "2")
    assert "_sample()" in err and "assignment/load_data.py" in err


def test_a_missing_code_folder_fails_with_one_clear_line(splits, capsys):
    err = error_line(capsys, "--code", "/nonexistent")
    assert "/nonexistent" in err and "load_data.py" in err


def test_missing_data_fails_with_one_clear_line(tmp_path, monkeypatch, capsys):
    """No cache and a source folder without the zips: one line saying what to set, exit 1."""
    monkeypatch.setenv("OMNIGLOT_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("OMNIGLOT_SOURCE", str(tmp_path / "no-zips-here"))
    err = error_line(capsys)
    assert "OMNIGLOT_SOURCE" in err and "images_background.zip" in err


def test_help_lists_every_flag_with_its_default():
    result = run_cli("--help", timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m kit.train")
    for flag in ("--num-shots", "--code", "--sampler", "--num-workers", "--device", "--dry-run"):
        assert flag in result.stdout
    assert result.stdout.count("(default:") >= 17


# --- evaluate ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_model() -> nn.Module:
    torch.manual_seed(0)
    return load_submission("solutions").models.MANN(3, 1, hidden_dim=16)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_evaluate_restores_the_models_mode(small_model, splits, mode):
    small_model.train(mode == "train")
    evaluate(small_model, splits["val"].images, 3, 1, num_tasks=20, seed=0)
    assert small_model.training == (mode == "train")


def test_evaluate_is_deterministic_for_a_fixed_seed(small_model, splits):
    first = evaluate(small_model, splits["val"].images, 3, 1, num_tasks=100, seed=5, batch_size=30)
    again = evaluate(small_model, splits["val"].images, 3, 1, num_tasks=100, seed=5, batch_size=30)
    other = evaluate(small_model, splits["val"].images, 3, 1, num_tasks=100, seed=6, batch_size=30)
    assert first == again
    assert first.loss != other.loss
    assert first.num_tasks == 100


class ParityOracle(nn.Module):
    """Right on every query whose character id (identity images) is even, wrong on the rest."""

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        characters = torch.round(images[..., 0] * checks.SCALE).long()  # [B, K+1, N]
        right = (characters % 2 == 0)[..., None]  # [B, K+1, N, 1]
        return 5.0 * torch.where(right, labels, labels.roll(1, dims=-1))  # [B, K+1, N, N]

    def loss_function(self, preds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_classes = preds.shape[-1]
        return F.cross_entropy(
            preds[:, -1].reshape(-1, num_classes), labels[:, -1].reshape(-1, num_classes)
        )


def test_evaluate_reports_the_mean_and_the_95_percent_half_width():
    """accuracy = mean of per-task accuracies a_t; ci95 = 1.96 * sample std(a_t) / sqrt(T)."""
    images = checks.identity_images(40)
    num_tasks, seed = 400, 3
    result = evaluate(ParityOracle(), images, 3, 1, num_tasks=num_tasks, seed=seed, batch_size=500)
    tasks, _ = sample_tasks(images, 3, 1, num_tasks, np.random.default_rng(seed))
    characters, _ = checks.decode(tasks)  # [T, K+1, N]
    per_task = (characters[:, -1] % 2 == 0).mean(axis=1)  # [T]: which queries the oracle gets
    assert per_task.std() > 0.1, "the oracle must be right on some tasks and wrong on others"
    # evaluate averages float32 per-task accuracies: equal to about 1e-7.
    assert result.accuracy == pytest.approx(per_task.mean(), abs=1e-6)
    expected = 1.96 * per_task.std(ddof=1) / math.sqrt(num_tasks)
    assert result.ci95 == pytest.approx(expected, rel=1e-5)
    assert result.ci95 != pytest.approx(
        1.96 * per_task.std(ddof=0) / math.sqrt(num_tasks), rel=1e-5
    )


# --- the recipe (kit.step) ----------------------------------------------------------------


def test_init_lstms_sets_orthogonal_recurrent_xavier_input_and_the_forget_bias():
    model = load_submission("solutions").models.MANN(3, 1, hidden_dim=16)
    assert init_lstms(model, forget_bias=1.0) == 2
    for lstm in (model.layer1, model.layer2):
        H = lstm.hidden_size
        for gate in lstm.weight_hh_l0.detach().split(H):  # [H, H] each: orthogonal
            assert torch.allclose(gate @ gate.T, torch.eye(H), atol=1e-5)
        for gate in lstm.weight_ih_l0.detach().split(H):  # Xavier uniform bound
            bound = math.sqrt(6 / (gate.shape[0] + gate.shape[1]))
            assert gate.abs().max() <= bound and gate.abs().max() > 0.5 * bound
        i, f, g, o = lstm.bias_ih_l0.detach().split(H)
        assert (f == 1).all() and (i == 0).all() and (g == 0).all() and (o == 0).all()
        assert (lstm.bias_hh_l0 == 0).all()


def test_the_learning_rate_warms_up_then_decays_to_zero_along_a_cosine():
    model = nn.Linear(2, 2)
    recipe = Recipe(learning_rate=1.0, warmup_steps=4, schedule="cosine")
    optimizer, scheduler = make_optimizer(model, recipe, total_steps=12)
    rates = []
    for _ in range(12):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert rates[4:8] == pytest.approx([0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(4)])
    assert all(a > b for a, b in itertools.pairwise(rates[4:]))
    constant = make_optimizer(model, Recipe(learning_rate=1.0, warmup_steps=0,
                                            schedule="constant"), 12)  # fmt: skip
    assert constant[0].param_groups[0]["lr"] == 1.0


class Scaled(nn.Module):
    """A one-weight "MANN" whose loss is `scale * w`: its gradient norm is `scale`."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.w, self.scale = nn.Parameter(torch.zeros(())), scale

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return labels + self.w * 0

    def loss_function(self, preds: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.scale * self.w + preds.sum() * 0


def test_train_step_clips_the_gradient_norm():
    images, labels = torch.zeros(2, 2, 2, 784), torch.eye(2).expand(2, 2, 2, 2).clone()
    for clip, expected in ((None, -100.0), (1.0, -1.0)):
        model = Scaled(100.0)
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        train_step(model, optimizer, images, labels, clip_norm=clip)
        assert model.w.item() == pytest.approx(expected)


def test_a_non_finite_loss_stops_training_naming_the_step():
    images, labels = torch.zeros(2, 2, 2, 784), torch.eye(2).expand(2, 2, 2, 2).clone()
    model = Scaled(float("nan"))
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(Diverged, match="diverged at step 7") as caught:
        train_step(model, optimizer, images, labels, step=7)
    assert caught.value.step == 7 and "learning rate" in str(caught.value)
    assert model.w.item() == 0.0, "no update from a non-finite loss"


def test_a_run_that_diverges_fails_with_one_line_naming_the_step(splits, capsys, tmp_path):
    """A loss_function that turns NaN at its third call: exit 1, one line naming step 3."""
    for name in ("load_data.py", "models.py"):
        (tmp_path / name).write_text((REPO / "solutions" / name).read_text())
    with open(tmp_path / "models.py", "a") as file:
        file.write(
            "\n\n_calls, _loss = [0], MANN.loss_function\n\n\n"
            "def _nan_at_three(self, preds, labels):\n"
            "    _calls[0] += 1\n"
            "    return _loss(self, preds, labels) * (float('nan') if _calls[0] == 3 else 1)\n\n\n"
            "MANN.loss_function = _nan_at_three\n"
        )
    out = tmp_path / "run"
    err = error_line(capsys, "--code", str(tmp_path), "--out", str(out))
    assert "diverged at step 3" in err and "loss_function" in err and "learning rate" in err
    assert not out.exists()


def test_on_step_can_stop_a_run_early(splits):
    seen = []
    result = train(replace(TINY, steps=50), splits=splits, progress=False,
                   on_step=lambda step, loss: seen.append((step, loss)) or step == 4)  # fmt: skip
    assert [step for step, _ in seen] == [1, 2, 3, 4]
    assert all(math.isfinite(loss) for _, loss in seen)
    assert result.history[-1]["step"] == 4 and result.test is not None


# --- flags, sampler ------------------------------------------------------------------------


def test_every_config_field_is_a_flag_with_its_default():
    config, progress = parse_args([])
    assert config == TrainConfig() and progress
    for spec in dataclasses.fields(TrainConfig):
        kind = str(spec.type).split(" ")[0]
        value = {"int": 3, "float": 0.5}.get(kind) or (spec.metadata["choices"] or ("x",))[-1]
        parsed, _ = parse_args(["--" + spec.name.replace("_", "-"), str(value)])
        assert getattr(parsed, spec.name) == value, spec.name


def test_the_sampler_is_never_chosen_by_the_folder_name(splits, tmp_path, monkeypatch):
    """A student folder called `solutions` trains and evaluates on its own DataGenerator."""
    folder = tmp_path / "solutions"
    folder.mkdir()
    for name in ("load_data.py", "models.py"):
        (folder / name).write_text((REPO / "solutions" / name).read_text())
    (folder / "load_data.py").write_text(
        (folder / "load_data.py").read_text()
        + "\n\nDataGenerator._sample = lambda self: 1 / 0  # the student's sampler is used\n"
    )
    assert TrainConfig().sampler == "generator"
    with pytest.raises(ZeroDivisionError):
        train(replace(TINY, code=str(folder), sampler="generator"), splits=splits, progress=False)


def test_without_the_batched_sampler_training_and_evaluation_use_the_generator(splits, monkeypatch):
    """The student package's kit has no `sample_tasks`: `--sampler generator` still works."""
    monkeypatch.delattr(kit.episodes, "sample_tasks")
    monkeypatch.delattr(kit.episodes, "TaskBatches")
    result = train(replace(TINY, sampler="generator"), splits=splits, progress=False)
    assert 0.0 <= result.test.accuracy <= 1.0 and result.test.num_tasks == TINY.test_tasks
    with pytest.raises(ValueError, match="--sampler generator"):
        train(replace(TINY, sampler="batched"), splits=splits, progress=False)


def test_evaluate_on_a_data_generator_is_deterministic_for_a_fixed_seed(small_model, splits):
    generator = load_submission("solutions").load_data.DataGenerator
    args = (small_model, splits["val"].images, 3, 1)
    first = evaluate(*args, num_tasks=60, seed=5, batch_size=25, data_generator=generator)
    again = evaluate(*args, num_tasks=60, seed=5, batch_size=25, data_generator=generator)
    other = evaluate(*args, num_tasks=60, seed=6, batch_size=25, data_generator=generator)
    assert first == again and first.loss != other.loss and first.num_tasks == 60


@pytest.mark.parametrize("path", ["kit/train.py", "kit/step.py"])
def test_no_module_level_import_of_the_batched_sampler(path):
    """The student package ships kit/ without `sample_tasks`: importing must not need it."""
    tree = ast.parse((REPO / path).read_text())
    names = {
        alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    assert not names & {"sample_tasks", "TaskBatches"}, names


def imported_modules(path: str) -> set[str]:
    """The modules a file imports: top-level packages, except kit modules by full name."""
    tree = ast.parse((REPO / path).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return {name if name.startswith("kit.") else name.split(".")[0] for name in names}


def test_kit_step_imports_only_the_standard_library_torch_and_torch_free_kit_modules():
    """The grader's child stages kit/step.py with kit/recipe.py and kit/accuracy.py only, and
    the grader's own process imports those two without torch."""
    allowed = {"__future__", "math", "torch", "kit.recipe", "kit.accuracy"}
    assert imported_modules("kit/step.py") <= allowed, imported_modules("kit/step.py")
    assert imported_modules("kit/recipe.py") <= {"__future__", "dataclasses"}
    assert imported_modules("kit/accuracy.py") <= {"__future__"}


def test_the_stub_error_suggests_solutions_only_where_there_is_one(monkeypatch):
    """The student package has no solutions/: its stub error must not point there."""
    import kit.train

    try:
        raise NotImplementedError
    except NotImplementedError as error:
        raised = error
    assert "--code solutions" in kit.train.unimplemented_message(raised)
    monkeypatch.setattr(kit.train, "REPO_ROOT", Path("/nonexistent"))
    message = kit.train.unimplemented_message(raised)
    assert "--code solutions" not in message and "numbered steps" in message
