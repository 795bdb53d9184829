"""A feedforward-and-average learner in the style of Conditional Neural Processes.

Letters: B tasks per batch, K shots, N classes, E embedding size, H summary size.

Garnelo et al. (2018, "Conditional Neural Processes", section 4.3) classify Omniglot like this:
an encoder h turns every labelled support example into a representation, the representations
are *averaged* (so the learner is invariant to the order of the support set and costs O(K*N)),
and a decoder g predicts each query's label from the query and that summary. For
classification the average is taken per class: the summary of class n is the mean of
h(x) over the K support drawings labelled n, found from the labels (never from column order).
The decoder scores a query against each class summary with the same small network, so one set
of weights serves every class and every N.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from learners.common import query_loss, support_labels
from learners.encoder import ConvEncoder


class CNP(nn.Module):
    """Encode, average per class, decode: `forward(images, labels) -> logits [B, K+1, N, N]`.

    Args:
        num_classes: N; num_shots: K (kept for the common constructor; any K works).
        hidden_dim: H, the size of the per-example representations and of the decoder.
        channels: width of the conv encoder.
    """

    def __init__(
        self, num_classes: int, num_shots: int, hidden_dim: int = 256, channels: int = 64
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_shots = num_shots
        self.encoder = ConvEncoder(channels)
        E = self.encoder.dim
        self.represent = nn.Sequential(  # h: one support example -> its representation
            nn.Linear(E, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim)
        )
        self.decode = nn.Sequential(  # g: (query embedding, class summary) -> one logit
            nn.Linear(E + hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 1)
        )

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """images `[B, K+1, N, 784]`, labels `[B, K+1, N, N]` -> logits `[B, K+1, N, N]`.

        Only rows 0..K-1 of `labels` are read; every row is predicted from the summary.
        """
        embeddings = self.encoder(images)  # [B, K+1, N, E]
        K = images.shape[1] - 1
        support = self.represent(embeddings[:, :K])  # [B, K, N, H]
        onehot = support_labels(labels)  # [B, K, N, N]
        # The average per class: sum over the support examples of the class, divided by count.
        totals = torch.einsum("bkmh,bkmn->bnh", support, onehot)  # [B, N, H]
        counts = onehot.sum(dim=(1, 2)).clamp(min=1).unsqueeze(-1)  # [B, N, 1]
        summary = totals / counts  # [B, N, H]

        B, rows, N, E = embeddings.shape
        pairs = torch.cat(  # every example against every class summary
            [
                embeddings.unsqueeze(3).expand(B, rows, N, N, E),  # [B, K+1, N, N, E]
                summary[:, None, None].expand(B, rows, N, N, summary.shape[-1]),  # [B,K+1,N,N,H]
            ],
            dim=-1,
        )
        return self.decode(pairs).squeeze(-1)  # [B, K+1, N, N]

    def loss_function(self, preds: Tensor, labels: Tensor) -> Tensor:
        """Query-row cross-entropy, `learners.common.query_loss`."""
        return query_loss(preds, labels)
