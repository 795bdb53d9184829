"""The homework's MANN recurrence fed by a convolutional encoder instead of raw pixels.

Letters: B tasks per batch, K shots, N classes, E embedding size.

The homework's MANN reads 784 raw pixels plus the label at every step; most of its capacity
goes into seeing. Here the conv encoder turns each drawing into E features first, and the
LSTM only has to do the black-box part: remember which features came with which label and
recall it for each query. The sequence is the homework's: support examples with their labels
in order, then the query drawings with zeros where their labels would be.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from learners.common import query_loss, support_labels
from learners.encoder import ConvEncoder


class ConvMANN(nn.Module):
    """Conv encoder -> two-layer LSTM -> linear read-out over the labelled sequence.

    Args:
        num_classes: N; num_shots: K (any K works).
        hidden_dim: units of each LSTM layer.
        channels: width of the conv encoder.
    """

    def __init__(
        self, num_classes: int, num_shots: int, hidden_dim: int = 256, channels: int = 64
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_shots = num_shots
        self.encoder = ConvEncoder(channels)
        # The label gets as many inputs as the drawing: a bare one-hot would be N of E+N inputs.
        self.label_embedding = nn.Linear(num_classes, self.encoder.dim)
        self.lstm = nn.LSTM(2 * self.encoder.dim, hidden_dim, 2, batch_first=True)
        self.readout = nn.Linear(hidden_dim, num_classes)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """images `[B, K+1, N, 784]`, labels `[B, K+1, N, N]` -> logits `[B, K+1, N, N]`."""
        B, rows, N, _ = images.shape
        embeddings = self.encoder(images)  # [B, K+1, N, E]
        hidden_query = torch.zeros_like(labels[:, -1:])  # [B, 1, N, N]: the query labels hidden
        seen_labels = torch.cat([support_labels(labels), hidden_query], dim=1)  # [B, K+1, N, N]
        sequence = torch.cat([embeddings, self.label_embedding(seen_labels)], dim=-1)  # [.., 2E]
        sequence = sequence.reshape(B, rows * N, -1)  # [B, (K+1)*N, 2E], support first
        states, _ = self.lstm(sequence)  # [B, (K+1)*N, hidden_dim]
        return self.readout(states).reshape(B, rows, N, N)  # [B, K+1, N, N]

    def loss_function(self, preds: Tensor, labels: Tensor) -> Tensor:
        """Query-row cross-entropy, `learners.common.query_loss`."""
        return query_loss(preds, labels)
