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


def random_distortions(images: Tensor, generator: torch.Generator) -> Tensor:
    """A random small affine distortion of every drawing: `[..., 784]` -> `[..., 784]`.

    After Koch et al.'s Siamese networks for Lake's challenge: rotation within +-10 degrees,
    shear within +-0.3, scale within 0.85-1.15 per axis, shift within +-1 pixel (of 28), each
    drawing its own, ink outside the frame lost and blank (0) pixels brought in. Meta-train
    tasks only, like the rotations: the learner sees more ways of drawing each character.
    """
    shape = images.shape
    flat = images.reshape(-1, 1, 28, 28)  # [M, 1, 28, 28]
    M = flat.shape[0]

    def uniform(low: float, high: float) -> Tensor:
        return low + (high - low) * torch.rand(M, generator=generator)

    angle = uniform(-10, 10) * torch.pi / 180
    cos, sin = torch.cos(angle), torch.sin(angle)
    rotation = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)
    shear = torch.eye(2).repeat(M, 1, 1)  # [M, 2, 2]
    shear[:, 0, 1], shear[:, 1, 0] = uniform(-0.3, 0.3), uniform(-0.3, 0.3)
    scale = torch.diag_embed(torch.stack([uniform(0.85, 1.15), uniform(0.85, 1.15)], -1))
    shift = torch.stack([uniform(-1, 1), uniform(-1, 1)], -1) * 2 / 28  # pixels -> [-1, 1] units
    # affine_grid maps output to input coordinates: the inverse of the distortion.
    theta = torch.cat([torch.linalg.inv(rotation @ shear @ scale), -shift[..., None]], -1)
    grid = F.affine_grid(theta.to(flat), list(flat.shape), align_corners=False)
    return F.grid_sample(flat, grid, align_corners=False).reshape(shape)


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
