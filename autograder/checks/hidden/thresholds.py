"""Hidden: the accuracy checks' training budget and thresholds. Never shipped in assignment/.

Calibrated from the plateau study (`benchmarks/plateau_study.py`, `results/plateau/`) and
`python -m autograder.calibrate` (raw runs beside this file); the numbers and the false-failure
computation are in CALIBRATION below and in the README section `grading`.

A check trains ONE fresh model with the kit's recipe (`kit.step`), in segments of
`Budget.segment` steps, measuring it on `VAL_TASKS` stop-check tasks (meta-test characters,
drawn independently of the scored tasks) after each; it stops as soon as that accuracy reaches
the threshold + STOP_MARGIN (a correct submission), or when it is still at chance after
`give_up` steps (a chance-level one), and is then scored on EVAL_TASKS meta-test tasks against
the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.evaluation import CHANCE_MARGIN, VAL_TASKS, Budget

__all__ = ["ATTEMPTS", "CHANCE_MARGIN", "CHECKS", "EVAL_SEED", "EVAL_TASKS", "VAL_TASKS"]

# Per-task accuracy lies in [0, 1], so its variance is at most 1/4: with 3000 tasks the standard
# error of the mean is at most 0.5 / sqrt(3000) = 0.91 points, whatever the model.
EVAL_TASKS = 3000
EVAL_SEED = 20260517  # the meta-test tasks (scored and stop-check) of every grading run
ATTEMPTS = 4  # fresh initialisations per check; a new one only after a plateau ("chance")
STOP_MARGIN = 0.03  # stop training once the stop-check accuracy >= threshold + this

# Calibration (2026-12-04, 16 seeds per setting and model; README, "Accuracy checks and their
# calibration", has the whole text). The plateau study (results/plateau/runs.jsonl), recipe
# "combined", the reference (with its linear read-out) and the model before the read-out:
# at step 400 every learning seed was at 61.8% or more on meta-val (the reference's slowest,
# 2-shot seed 9, which ends at 93%) and every stuck one below 55% (the reference's seed 7 in
# both settings, 47.9% and 48.8%; the old model's 2-shot seed 9, 54.3%), so "still below
# chance + 5 points at 400 steps" tells a plateau from a slow learner (give_up = 400), and
# only a plateau is retried, with a fresh initialisation (ATTEMPTS = 4). A slow learner taken
# for a plateau costs a retry, not the points.
# Final meta-test accuracy of the learning seeds, normal fit (reference; old model):
#   1-shot 2-way, 3000 steps: mean 92.8%, sd 0.9, worst 90.8% (15 seeds); 90.5%, 1.4, 87.2 (16);
#   2-shot 2-way, 2000 steps: mean 94.3%, sd 0.7, worst 92.4% (15 seeds); 93.6%, 0.7, 92.2 (15).
# Threshold 85% for both: 8.6 and 12.5 sd below the reference's means (4.0 and 12.6 for the
# old model, whose code students may still hand in: 3e-5 at worst).
# False failure of a correct submission, per training:
#   (a) stop on a lucky stop check: stop (2000 tasks) and score (3000 tasks) are independent
#       samples; per-task sd 0.24 -> sd of their difference 0.24 * sqrt(1/2000 + 1/3000) = 0.68
#       points; stopping at threshold + 3 and scoring below the threshold is a 4.4-sd event,
#       5.7e-6 per look, <= 1.7e-4 per training over up to 30 looks (union bound);
#   (b) learning, never stopping and ending below the threshold: the normal fit, 3e-5 at worst;
#   (c) a plateau on all four attempts: the reference was stuck on 2 runs in 32 -> (1/16)^4 =
#       1.5e-5 (with the 95% upper bound on 2 in 32, 0.21, it would be 1.9e-3).
# Four trainings per grading: 4 * (1.7e-4 + 3e-5 + 1.5e-5) = 8.6e-4 < 1e-3 per grading, on the
# point estimate of (c). Measured through the grader: README, "Accuracy checks".


@dataclass(frozen=True)
class AccuracyCheck:
    budget: Budget  # `steps` is the most the check trains
    threshold: float  # minimum meta-test query accuracy
    give_up: int  # steps after which a model still at chance stops training

    @property
    def stop_at(self) -> float:
        return self.threshold + STOP_MARGIN


CHECKS = [
    AccuracyCheck(Budget(num_shots=1, num_classes=2, steps=3000), 0.85, give_up=400),
    AccuracyCheck(Budget(num_shots=2, num_classes=2, steps=2000), 0.85, give_up=400),
]
