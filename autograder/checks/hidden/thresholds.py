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
ATTEMPTS = 1  # fresh initialisations per check: the recipe leaves no seed on the plateau
STOP_MARGIN = 0.03  # stop training once the stop-check accuracy >= threshold + this

# Calibration (2026-12-04; README, "Accuracy checks and their calibration", has the whole text).
# The plateau study (results/plateau/runs.jsonl): with the recipe every seed left chance by step
# 200 (hence one attempt, and give_up = 600, three times the worst escape). Final meta-test
# accuracy, normal fit over the seeds: 1-shot 2-way (3000 steps) mean 90.1%, sd 1.5 (seeds 0 1 2
# 4 6 9 13, worst 87.2%); 2-shot 2-way (2000 steps) mean 93.7%, sd 0.8 (seeds 0-6, worst 92.2%).
# Thresholds: the highest whole percent at most 85 that is >= 3.72 sd below the mean (1e-4 per
# check): 84% for 1-shot 2-way (4.0 sd: 3e-5; 85% is 3.3 sd: 4e-4), 85% for 2-shot 2-way (10 sd).
# False failure of a correct submission, per check:
#   (a) stop on a lucky stop check: stop (2000 tasks) and score (3000 tasks) are independent
#       samples; per-task sd 0.24 -> sd of their difference 0.24 * sqrt(1/2000 + 1/3000) = 0.68
#       points; stopping at threshold + 3 and scoring below the threshold is a 4.4-sd event,
#       5.7e-6 per look, <= 1.7e-4 per check over up to 30 looks (union bound);
#   (b) never stopping and ending below the threshold: the normal fit above, 3e-5 and ~0;
#   (c) still at chance after 600 steps: no seed measured was after 200.
# Four checks: 4 * 1.7e-4 + 2 * 3e-5 < 1e-3 per grading. Rests on 7 seeds per setting, not 16 (shared
# CPU): the fits are indicative. Measured through the grader (calibration_recipe_local_cpu.json):
# the reference 64/64; the corpus's chance-level submission gave up after 600 steps at 49.6%.


@dataclass(frozen=True)
class AccuracyCheck:
    budget: Budget  # `steps` is the most the check trains
    threshold: float  # minimum meta-test query accuracy
    give_up: int  # steps after which a model still at chance stops training

    @property
    def stop_at(self) -> float:
        return self.threshold + STOP_MARGIN


CHECKS = [
    AccuracyCheck(Budget(num_shots=1, num_classes=2, steps=3000), 0.84, give_up=600),
    AccuracyCheck(Budget(num_shots=2, num_classes=2, steps=2000), 0.85, give_up=600),
]
