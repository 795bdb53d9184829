"""Hidden: the accuracy checks' training budget and thresholds. Never shipped in assignment/.

Calibrated with `python -m autograder.calibrate` (numbers below and in the README section
`grading`). The spec's MANN sometimes sits on the 50% plateau for the whole budget, depending
on its initialisation and tasks (measured: 3 to 5 of 16 runs per setting at 4000 steps, and
no better with larger batches or learning rates), so a check trains up to ATTEMPTS fresh
models (seeds seed, seed+1, ...) and passes as soon as one reaches the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.evaluation import Budget

# Per-task accuracy lies in [0, 1], so its variance is at most 1/4: with 3000 tasks the standard
# error of the mean is at most 0.5 / sqrt(3000) = 0.91 points, whatever the model.
EVAL_TASKS = 3000
EVAL_SEED = 20260517  # the meta-test tasks of every grading run
CHANCE_MARGIN = 0.05  # within this of 1/N, the feedback says "at chance"
ATTEMPTS = 3  # fresh initialisations per check, stopping at the first that passes

# 4000 steps of 32 tasks, Adam 1e-3: reference meta-test accuracies (on 2000 tasks), seeds 0-7,
# measured on an H200 machine's CPU (torch 2.11, 14 runs at a time), first number the
# grader's tasks, second the reference DataGenerator:
#   K=1 N=2: 88.8 89.1 | 88.8 50.8 | 89.6 89.3 | 89.0 89.9 | 51.2 50.1 | 86.4 88.6 | 88.3 88.8
#            | 87.8 74.9
#   K=2 N=2: 91.4 83.4 | 92.2 90.5 | 71.1 74.9 | 92.6 89.4 | 51.5 50.0 | 91.3 91.7 | 50.1 50.0
#            | 86.7 52.0
# The same on the 2-core CPU machine (torch 2.13, 3000 tasks), seeds 0-5:
#   K=1 N=2: 88.4 90.0 | 89.9 50.4 | 89.6 89.1 | 89.5 89.9 | 52.1 50.1 | 88.8 87.5
#   K=2 N=2: 91.5 89.3 | 91.8 91.4 | 60.0 72.0 | 91.6 89.5 | 51.5 91.2 | 90.2 92.3
# (raw runs: calibration_h200_cpu.txt, calibration_local_cpu.json beside this file).
# An untrained MANN: 48.9% to 50.8%. Runs stuck on the plateau stay <= 52.5%; one was leaving
# it (60.0%), all others reached >= 71.1%. The threshold is 15 points (over 16 standard errors)
# above chance, so a chance-level model never passes; with ATTEMPTS = 3, every seed 0-4 passes
# every check on both machines.
THRESHOLD = 0.65


@dataclass(frozen=True)
class AccuracyCheck:
    budget: Budget
    threshold: float  # minimum meta-test query accuracy


CHECKS = [
    AccuracyCheck(Budget(num_shots=1, num_classes=2, steps=4000, batch_size=32), THRESHOLD),
    AccuracyCheck(Budget(num_shots=2, num_classes=2, steps=4000, batch_size=32), THRESHOLD),
]
