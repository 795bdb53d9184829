"""Smoke tests of the benchmark scripts: each runs end to end on a tiny budget and writes JSON.

They check that the scripts work, not how fast anything is (no wall-clock assertions).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import bench_sampling, bench_training


@pytest.mark.parametrize("script", [bench_sampling, bench_training])
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
    assert bench_training.main([*args, "--device", "cpu", "--no-progress", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [row["sampler"] for row in result["speed"]] == ["batched", "generator"]
    assert all(0.0 < row["sampling_fraction"] < 1.0 for row in result["speed"])
    target = result["time_to_target"]
    steps = [row["step"] for row in target["curve"]]
    assert target["target"] == 0.9 and steps in ([1], [1, 2])  # [1] only if 90% was reached
    assert target["reached"] == (target["step"] is not None)


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
