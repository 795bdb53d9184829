"""The homework's MANN before the linear read-out: the plateau study's baseline model.

Its logits are the second LSTM's outputs themselves, so every logit lies in (-1, 1) (the LSTM's
tanh): on 2-way tasks the softmax can never exceed e / (e + 1/e) = 0.88. The reference
(`solutions/models.py`) adds `self.readout`, a `nn.Linear(N, N)`, after the second LSTM; here
it is the identity, and it is never built as a Linear, so that a seed draws exactly the
initial weights the model had before the change (the study's earlier runs reproduce).
"""

from __future__ import annotations

from torch import nn

from kit.submission import load_submission

_reference = load_submission("solutions").models


class MANN(_reference.MANN):
    """The reference `MANN` whose logits are the second LSTM's outputs, `[B, K+1, N, N]`."""

    def __init__(self, num_classes: int, num_shots: int, hidden_dim: int = 128) -> None:
        nn.Module.__init__(self)  # not the reference's: it would draw the read-out's weights
        self.num_classes = num_classes
        self.num_shots = num_shots
        self.layer1 = nn.LSTM(784 + num_classes, hidden_dim, batch_first=True)
        self.layer2 = nn.LSTM(hidden_dim, num_classes, batch_first=True)
        self.readout = nn.Identity()
