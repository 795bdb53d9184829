"""An attention-based black-box learner: the query attends to the labelled support set.

Letters: B tasks per batch, K shots, N classes, E embedding size, d model width, h heads,
L = (K+1)*N tokens per task.

Like SNAIL (Mishra et al. 2018) and the transformer learners that followed it, the whole task
is one sequence: each support drawing becomes a token holding its embedding *beside* an
embedding of its label (concatenated, so that attention can match on the drawing half and
carry the label half), each query drawing a token holding its embedding beside a learned
"label unknown" marker. Pre-norm transformer blocks mix them under a mask that lets support
tokens see the support set and each query token see the support set and itself, never another
query: a query's prediction depends on its own drawing and the labelled support set only.

Two choices make it leave the chance-level plateau of black-box learners quickly:

- Queries and keys share one projection, so that at initialisation already the attention
  score of two tokens grows with the similarity of their drawings (a positive semi-definite
  kernel) and a query's attention lands on the support drawings that look like it.
- The read-out is tied to the label embedding: the logit of class n is the dot product of the
  query's output (projected to the label half) with the embedding of label n, so the network
  only has to hand the attended label embedding through, whatever the class order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from learners.common import query_loss, support_labels
from learners.encoder import ConvEncoder


class SharedKeyAttention(nn.Module):
    """Multi-head self-attention whose queries and keys share one projection.

    `forward(x [B, L, d], blocked [L, L])`: True in `blocked` forbids attending there.
    """

    def __init__(self, model_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query_key = nn.Linear(model_dim, model_dim, bias=False)
        self.value = nn.Linear(model_dim, model_dim)
        self.out = nn.Linear(model_dim, model_dim)

    def forward(self, x: Tensor, blocked: Tensor) -> Tensor:
        B, L, d = x.shape
        split = (B, L, self.heads, d // self.heads)
        qk = self.query_key(x).reshape(split).transpose(1, 2)  # [B, h, L, d/h]
        v = self.value(x).reshape(split).transpose(1, 2)  # [B, h, L, d/h]
        attended = F.scaled_dot_product_attention(qk, qk, v, attn_mask=~blocked)  # [B, h, L, d/h]
        return self.out(attended.transpose(1, 2).reshape(B, L, d))  # [B, L, d]


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, model_dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(model_dim)
        self.attention = SharedKeyAttention(model_dim, heads)
        self.norm2 = nn.LayerNorm(model_dim)
        self.mlp = nn.Sequential(
            nn.Linear(model_dim, 2 * model_dim), nn.GELU(), nn.Linear(2 * model_dim, model_dim)
        )

    def forward(self, x: Tensor, blocked: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x), blocked)  # [B, L, d]
        return x + self.mlp(self.norm2(x))  # [B, L, d]


class AttentionLearner(nn.Module):
    """Conv encoder -> transformer over support and query tokens -> label-tied read-out.

    Args:
        num_classes: N; num_shots: K (any K works).
        model_dim: d, the token width (half drawing, half label).
        layers, heads: of the transformer.
        channels: width of the conv encoder.
    """

    def __init__(
        self,
        num_classes: int,
        num_shots: int,
        model_dim: int = 128,
        layers: int = 2,
        heads: int = 4,
        channels: int = 64,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_shots = num_shots
        half = model_dim // 2
        self.encoder = ConvEncoder(channels)
        self.project = nn.Linear(self.encoder.dim, model_dim - half)
        self.label_embedding = nn.Linear(num_classes, half, bias=False)  # weight [d/2, N]
        self.query_marker = nn.Parameter(torch.zeros(half))  # "my label is unknown"
        self.blocks = nn.ModuleList(Block(model_dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(model_dim)
        self.readout = nn.Linear(model_dim, half)

    @staticmethod
    def attention_mask(num_support: int, num_query: int, device: torch.device) -> Tensor:
        """`[L, L]` boolean, True where attention is *blocked*: queries see no other query."""
        L = num_support + num_query
        blocked = torch.zeros(L, L, dtype=torch.bool, device=device)
        blocked[:, num_support:] = True  # nobody attends to a query token ...
        query = torch.arange(num_support, L, device=device)
        blocked[query, query] = False  # ... except that query itself
        return blocked

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """images `[B, K+1, N, 784]`, labels `[B, K+1, N, N]` -> logits `[B, K+1, N, N]`."""
        B, rows, N, _ = images.shape
        K = rows - 1
        drawings = self.project(self.encoder(images))  # [B, K+1, N, d/2]
        support = torch.cat(
            [drawings[:, :K], self.label_embedding(support_labels(labels))], dim=-1
        )  # [B, K, N, d]
        marker = self.query_marker.expand(B, 1, N, -1)  # [B, 1, N, d/2]
        query = torch.cat([drawings[:, K:], marker], dim=-1)  # [B, 1, N, d]
        x = torch.cat([support, query], dim=1).reshape(B, rows * N, -1)  # [B, L, d]
        blocked = self.attention_mask(K * N, N, images.device)  # [L, L]
        for block in self.blocks:
            x = block(x, blocked)  # [B, L, d]
        logits = self.readout(self.norm(x)) @ self.label_embedding.weight  # [B, L, N]: tied
        return logits.reshape(B, rows, N, N)  # [B, K+1, N, N]

    def loss_function(self, preds: Tensor, labels: Tensor) -> Tensor:
        """Query-row cross-entropy, `learners.common.query_loss`."""
        return query_loss(preds, labels)
