"""What every learner shares: the query loss, hiding the query labels, rotation augmentation.

Letters: B tasks per batch, K shots, N classes, C characters, D drawings per character (20),
E embedding size, 784 = 28 x 28 pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def query_loss(preds: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of the query row: preds and labels `[B, K+1, N, N]` -> scalar.

    The same quantity as the homework's `MANN.loss_function`; support rows contribute nothing.
    """
    N = preds.shape[-1]
    logits = preds[:, -1].reshape(-1, N).float()  # [B*N, N]; float: safe under autocast
    targets = labels[:, -1].reshape(-1, N).argmax(dim=-1)  # [B*N]
    return F.cross_entropy(logits, targets)


def support_labels(labels: Tensor) -> Tensor:
    """The labels a learner may read: `[B, K+1, N, N]` -> `[B, K, N, N]`, the query row dropped.

    Every learner takes its labels from here, so no code path can see the query labels.
    """
    return labels[:, :-1]


def with_rotations(images: np.ndarray) -> np.ndarray:
    """`[C, D, 784]` -> `[4C, D, 784]`: each character rotated by 0, 90, 180 and 270 degrees,
    each rotation a new character (the augmentation of Santoro et al., Vinyals et al., Snell et
    al. and Mishra et al.). Used on meta-train characters only, never on meta-test."""
    C, D, _ = images.shape
    square = images.reshape(C, D, 28, 28)
    rotated = [np.rot90(square, k, axes=(2, 3)) for k in range(4)]  # 4 x [C, D, 28, 28]
    return np.ascontiguousarray(np.concatenate(rotated).reshape(4 * C, D, 784))


class Autocast(nn.Module):
    """Runs a learner's forward pass under mixed precision (bfloat16) and returns float32 logits.

    bfloat16 keeps float32's exponent range, so no gradient scaler is needed; the backward pass
    runs outside autocast, as PyTorch recommends. `loss_function` is the wrapped learner's.
    """

    def __init__(self, learner: nn.Module, device_type: str) -> None:
        super().__init__()
        self.learner = learner
        self.device_type = device_type

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.learner(images, labels).float()

    def loss_function(self, preds: Tensor, labels: Tensor) -> Tensor:
        return self.learner.loss_function(preds, labels)
