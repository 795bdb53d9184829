"""Reference black-box learners and a fine-tuning baseline, for demos beyond the homework.

Every learner has the homework MANN's interface: `forward(images [B, K+1, N, 784],
labels [B, K+1, N, N]) -> logits [B, K+1, N, N]` that never reads the query labels (row K), and
`loss_function(preds, labels)`, the query-row cross-entropy. So `kit.train.train_step` and
`kit.train.evaluate` work on all of them.

    from learners import build_learner
    model = build_learner("attention", num_classes=5, num_shots=1)

`python -m learners.benchmark --help` trains and compares them.
"""

from __future__ import annotations

from torch import nn

from learners.attention import AttentionLearner
from learners.cnp import CNP
from learners.conv_mann import ConvMANN
from learners.finetune import FineTune

LEARNERS: dict[str, type[nn.Module]] = {
    "cnp": CNP,  # feedforward + average (Conditional Neural Processes)
    "conv_mann": ConvMANN,  # conv encoder feeding the MANN recurrence
    "attention": AttentionLearner,  # support and query in one attended sequence
    "finetune": FineTune,  # pretrain a classifier, fine-tune the last layer per task
}


def build_learner(name: str, num_classes: int, num_shots: int, **options) -> nn.Module:
    """A fresh learner `name` (a key of `LEARNERS`) for N = `num_classes`, K = `num_shots`."""
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; choose from {', '.join(LEARNERS)}")
    return LEARNERS[name](num_classes, num_shots, **options)


__all__ = ["CNP", "LEARNERS", "AttentionLearner", "ConvMANN", "FineTune", "build_learner"]
