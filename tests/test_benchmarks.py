"""Smoke tests of the benchmark scripts: each runs end to end on a tiny budget and writes JSON.

They check that the scripts work, not how fast anything is (no wall-clock assertions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import bench_check_cost, bench_sampling, bench_training


@pytest.mark.parametrize("script", [bench_sampling, bench_training, bench_check_cost])
def test_help_describes_every_flag_with_its_default(script, capsys):
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--device" in out and "--out" in out
    flags = [word for word in out.split() if word.startswith("--") and word != "--help"]
    assert out.count("(default:") >= len(set(flags)), "every flag's help must name its default"


def test_bench_sampling_measures_every_method_and_writes_json(splits, tmp_path: Path, capsys):
    out = tmp_path / "sampling.json"
    args = ["--seconds", "0.01", "--ways", "3", "--batch-size", "8", "--device", "cpu"]
    assert bench_sampling.main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    methods = {(row["method"], row["workers"]) for row in result["results"]}
    assert methods == {
        ("_sample per episode", 0),
        ("DataLoader over _sample", 0),
        ("DataLoader over _sample", 2),
        ("sample_tasks (batched)", 0),
    }
    assert all(row["episodes_per_s"] > 0 for row in result["results"])
    assert result["machine"]["device"] == "cpu"
    assert "sample_tasks (batched)" in capsys.readouterr().out  # the printed table


def test_bench_training_measures_speed_and_time_to_target(splits, tmp_path: Path):
    out = tmp_path / "training.json"
    args = ["--steps", "2", "--max-steps", "2", "--eval-every", "1", "--eval-tasks", "20"]
    args += ["--seeds", "0,3", "--device", "cpu", "--no-progress", "--out", str(out)]
    assert bench_training.main(args) == 0
    result = json.loads(out.read_text())
    assert [row["sampler"] for row in result["speed"]] == ["batched", "generator"]
    assert all(0.0 < row["sampling_fraction"] < 1.0 for row in result["speed"])
    target = result["time_to_target"]
    assert target["target"] == 0.9 and target["seeds"] == [0, 3]
    assert [run["seed"] for run in target["runs"]] == [0, 3]
    for run in target["runs"]:
        steps = [row["step"] for row in run["curve"]]
        assert steps in ([1], [1, 2])  # [1] only if 90% was reached
        assert run["reached"] == (run["step"] is not None)
    assert target["reached"] == sum(run["reached"] for run in target["runs"])
    assert (target["median_train_seconds"] is None) == (target["reached"] < 2)


def test_the_median_time_counts_a_seed_that_never_got_there_as_slowest():
    assert bench_training._median_with_misses([3.0, 1.0, 2.0], 3) == 2.0
    assert bench_training._median_with_misses([1.0, 5.0], 3) == 5.0
    assert bench_training._median_with_misses([1.0], 3) is None


def test_asking_for_cuda_without_one_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench_sampling.main(["--device", "cuda", "--out", "/nonexistent/x.json"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU" in err


def test_the_class_benchmark_makes_a_class_of_distinct_submissions_of_every_kind(tmp_path):
    from benchmarks import bench_class

    made = bench_class.make_class(tmp_path, 120)
    assert len(made) == 120 and len(list(tmp_path.iterdir())) == 120
    kinds = {kind for _, kind in made}
    assert {"correct", "stubs", "hangs_in_forward", "raises_at_import"} <= kinds
    texts = [(tmp_path / s / "models.py").read_text() for s, _ in made]
    assert len(set(texts)) == 120  # no two byte-identical


def test_the_container_benchmark_reads_sizes_and_documents_its_flags(capsys):
    from benchmarks import bench_container

    assert bench_container.parse_size("768M") == 768 << 20
    assert bench_container.parse_size("1G") == bench_container.parse_size("1024MB") == 1 << 30
    with pytest.raises(SystemExit):
        bench_container.main(["--help"])
    out = capsys.readouterr().out
    assert "--box" in out and "MEMORY:CPUS" in out and "--grade-args" in out


def test_the_check_cost_benchmark_times_both_submissions_as_the_grader_trains_them(
    splits, tmp_path: Path
):
    out = tmp_path / "cost.json"
    args = ["-N", "2", "--steps", "100", "--give-up", "100", "--attempts", "1", "--threshold",
            "0.99", "--out", str(out)]  # fmt: skip
    assert bench_check_cost.main(args) == 0
    result = json.loads(out.read_text())
    assert result["check"]["num_classes"] == 2 and result["stop_at"] == pytest.approx(1.02)
    runs = [(row["submission"], row["sampler"]) for row in result["rows"]]
    assert runs == [(name, sampler) for name in ("reference", "chance-level")
                    for sampler in ("grader", "student")]  # fmt: skip
    for row in result["rows"]:
        assert row["wall_s"] > 0 and len(row["outcomes"]) == 1
        (outcome,) = row["outcomes"]
        assert outcome["steps"] == 100 and outcome["stopped"] in ("chance", "budget")
        assert 0.0 <= outcome["accuracy"] <= 1.0
