"""Hidden: the accuracy checks' training budget and thresholds. Never shipped in assignment/.

Calibration (see the README section `grading`): the reference solution graded with
`--seed 0..4` on a 2-core CPU; the numbers below are those runs' meta-test accuracies.
"""

from __future__ import annotations

from dataclasses import dataclass

BATCH_SIZE = 128  # tasks per training step, the trainer's default
LEARNING_RATE = 1e-3  # Adam, the trainer's default
HIDDEN_DIM = 128
EVAL_TASKS = 2000  # per-task accuracy sd <= 0.35 at N = 2: standard error <= 0.8 points
EVAL_SEED = 20260517  # the meta-test tasks of every grading run
CHANCE_MARGIN = 0.05  # within this of 1/N, the feedback says "at chance"


@dataclass(frozen=True)
class Budget:
    """One accuracy check: K, N, training steps, and the minimum meta-test accuracy."""

    num_shots: int
    num_classes: int
    steps: int
    threshold: float


BUDGETS = [
    Budget(num_shots=1, num_classes=2, steps=1000, threshold=0.70),
    Budget(num_shots=2, num_classes=2, steps=1000, threshold=0.70),
]
