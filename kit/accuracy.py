"""Query accuracy of a batch of predictions, for NumPy arrays and torch tensors alike.

Letters: B tasks, K shots, N classes. Torch-free, so that the grader's own process scores the
predictions a child returns without importing torch; `kit.step` re-exports it for training.
"""

from __future__ import annotations


def query_accuracy(preds, labels):
    """Per-task accuracy of the query row: `[B]` from preds and labels `[B, K+1, N, N]`.

    Takes and returns NumPy arrays or torch tensors (float: float64 for NumPy, float32 for
    torch); a prediction is right when its largest logit is at the labelled class.
    """
    hits = preds[:, -1].argmax(-1) == labels[:, -1].argmax(-1)  # [B, N] bool
    return (hits * 1.0).mean(-1)  # [B]
