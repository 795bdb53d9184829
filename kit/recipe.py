"""The kit's training recipe as data: what `kit.step` applies to every MANN it trains.

Torch-free on purpose: the grader's own process (which never imports torch, to fit a 768 MB
container) sends the recipe to the child that trains, and the plateau study records it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """How the kit trains any MANN: initialisation, optimiser, schedule, clipping.

    The defaults are the plateau study's winning recipe; `Recipe.pytorch_default()` is the
    trainer before it (PyTorch's LSTM init, constant Adam 1e-3, no clipping).
    """

    learning_rate: float = 3e-3  # Adam's peak learning rate
    init: str = "orthogonal"  # orthogonal | default (PyTorch's own LSTM initialisation)
    forget_bias: float = 1.0  # forget-gate bias under init "orthogonal"
    warmup_steps: int = 100  # linear warmup from lr/warmup to lr
    schedule: str = "cosine"  # cosine (towards 0 at the last step) | constant, after the warmup
    clip_norm: float | None = 1.0  # gradient-norm clipping; None: no clipping

    @staticmethod
    def pytorch_default(learning_rate: float = 1e-3) -> Recipe:
        return Recipe(learning_rate, "default", 0.0, 0, "constant", None)
