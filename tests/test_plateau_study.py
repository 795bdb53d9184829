"""Tests of `benchmarks/plateau_study.py` on synthetic runs: escape steps, summary, figure.

The study itself trains for hours; here its bookkeeping is checked on hand-made curves.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from benchmarks import plateau_study as study


def fake_run(seed: int, curve: list[tuple[int, float]], test: float, recipe="combined") -> dict:
    history = [{"step": s, "val_accuracy": a} for s, a in curve]
    return {
        "setting": "K1N2",
        "recipe": recipe,
        "seed": seed,
        "steps": curve[-1][0],
        "batch_size": 128,
        "escape_step": study.first_step(history, 0.6),
        "target": 0.9,
        "target_step": study.first_step(history, 0.9),
        "test_accuracy": test,
        "test_ci95": 0.01,
        "final_val_accuracy": curve[-1][1],
        "train_seconds": 10.0,
        "seconds_to_target": None,
        "load_before": 1.0,
        "load_after": 1.0,
        "curve": [list(point) for point in curve],
    }


RUNS = [
    fake_run(0, [(100, 0.5), (200, 0.7), (300, 0.91)], 0.92),
    fake_run(1, [(100, 0.55), (200, 0.88), (300, 0.90)], 0.89),
    fake_run(2, [(100, 0.5), (200, 0.5), (300, 0.52)], 0.51, recipe="pytorch"),
]


def test_seeds_parse_as_ranges_and_lists():
    assert study.parse_seeds("0-3") == [0, 1, 2, 3]
    assert study.parse_seeds("0,4,6") == [0, 4, 6]
    assert study.parse_seeds("2-3,7") == [2, 3, 7]


def test_the_escape_step_is_the_first_evaluation_at_chance_plus_ten_points():
    assert RUNS[0]["escape_step"] == 200 and RUNS[1]["escape_step"] == 200
    assert RUNS[2]["escape_step"] is None and RUNS[0]["target_step"] == 300


def test_the_summary_counts_seeds_escapes_and_targets():
    summary = study.summarise(RUNS)
    combined, pytorch = summary["K1N2:combined:300"], summary["K1N2:pytorch:300"]
    assert combined["seeds"] == [0, 1] and combined["escaped"] == 2
    assert combined["test_reaches_target"] == 1  # 0.92 yes, 0.89 no
    assert combined["test_accuracy_min"] == 0.89 and combined["test_accuracy_max"] == 0.92
    assert combined["first_step_val_0.88"] == [300, 200]
    assert combined["first_step_val_0.88_fit"]["mean"] == 250.0
    assert pytorch["escaped"] == 0 and pytorch["first_step_val_0.88_fit"] is None
    table = study.markdown_table(summary)
    assert "| (1, 2) | combined | 300 | 2 | 90% | 1 of 2 |" in table
    assert (
        "| (1, 2) | pytorch | 300 | 1 | 90% | 0 of 1 | 51.0 / 51.0 / 51.0 | never | never |"
        in table
    )


def test_a_normal_fit_needs_every_run_to_get_there():
    assert study.normal_fit([100, 200, None]) is None
    fit = study.normal_fit([100, 200, 300])
    assert fit["mean"] == 200.0 and fit["p999"] == pytest.approx(200 + 3.09 * 100, abs=0.1)


def test_plot_only_redraws_the_figure_and_summary_from_the_runs(tmp_path, capsys):
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(run) + "\n" for run in RUNS))
    assert study.main(["--plot", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary) == {"K1N2:combined:300", "K1N2:pytorch:300"}
    with Image.open(tmp_path / "escape_ecdf.png") as image:
        image.verify()
    assert "| (1, 2) | pytorch | 300 | 1 |" in capsys.readouterr().out
