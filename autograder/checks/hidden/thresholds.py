"""Hidden: the accuracy checks' training budget and thresholds. Never shipped in assignment/.

Calibrated with `python -m autograder.calibrate` (see the README section `grading`); the
numbers it measured are in CALIBRATION below.
"""

from __future__ import annotations

from dataclasses import dataclass

from autograder.evaluation import Budget

EVAL_TASKS = 2000  # per-task accuracy sd <= 0.5 at N = 2: standard error <= 1.1, ~0.7 points
EVAL_SEED = 20260517  # the meta-test tasks of every grading run
CHANCE_MARGIN = 0.05  # within this of 1/N, the feedback says "at chance"


@dataclass(frozen=True)
class AccuracyCheck:
    budget: Budget
    threshold: float  # minimum meta-test query accuracy


CHECKS = [
    AccuracyCheck(Budget(num_shots=1, num_classes=2, steps=2000), threshold=0.75),
    AccuracyCheck(Budget(num_shots=2, num_classes=2, steps=2000), threshold=0.75),
]
