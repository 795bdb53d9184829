"""A memory-augmented black-box meta-learner: two stacked LSTMs read a labelled task.

Shapes use the letters of `load_data.py`: B tasks per batch, K shots, N classes, and
784 = 28 x 28 pixels per image.

The learner f_theta sees the whole task as one sequence of (image, label) pairs: first the
K*N labelled support examples, then the N query images with zeros where their labels would
be. Its recurrent state is the "memory" in which it stores what the support set says about
each class; its outputs at the query steps are the predicted labels. Training it across many
tasks with plain cross-entropy on the query predictions is meta-learning: the weights learn
*how to learn* a new task from its support set.

A linear read-out turns the second LSTM's outputs into the logits. Without it the logits would
be the LSTM's outputs themselves, bounded by its tanh to (-1, 1): on 2-way tasks the softmax
could never pass e / (e + 1/e) = 0.88. In the kit's plateau study, 15 of 16 training seeds
reached 90% on 1-shot 2-way with the read-out, 11 of 16 without it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MANN(nn.Module):
    """Two stacked LSTMs (`hidden_dim` units, then N units) over a task's labelled sequence,
    and a linear read-out (N to N) that gives the logits.

    Args:
        num_classes: N, the classes per task; also the size of the output layer.
        num_shots: K, the support examples per class.
        hidden_dim: units of the first LSTM.
    """

    def __init__(self, num_classes: int, num_shots: int, hidden_dim: int = 128) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_shots = num_shots
        self.layer1 = nn.LSTM(784 + num_classes, hidden_dim, batch_first=True)
        self.layer2 = nn.LSTM(hidden_dim, num_classes, batch_first=True)
        self.readout = nn.Linear(num_classes, num_classes)  # unbounded logits

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """Predict the labels of every example of every task, the query row included.

        Args:
            images: `[B, K+1, N, 784]`, rows 0..K-1 the support set, row K the query set.
            labels: `[B, K+1, N, N]` one-hot; the query row's labels are never read.

        Returns:
            `[B, K+1, N, N]` logits; `preds[:, K]` are the query predictions. The inputs are
            left unchanged.

        Outline:
            - The model never sees the query labels: in what it reads, the query row's
              labels are zeros. `labels` itself is never modified.
            - Each example is its image followed by its label (zeros for the query row):
              784+N numbers.
            - The examples form one sequence `[B, (K+1)*N, 784+N]`: the support rows in
              order (row 0 first, within a row class 0 first), then the query row.
            - `self.layer1` reads the sequence, `self.layer2` reads its outputs and
              `self.readout` maps each of those to that example's logits, returned as
              `[B, K+1, N, N]`.

        Steps:
            1. Hide the query labels: build a new labels tensor whose row K is zeros
               (`torch.zeros_like` and `torch.cat`); never write into `labels` in place.
            2. Concatenate images and those labels on the last axis: `[B, K+1, N, 784+N]`.
            3. Reshape to the sequence `[B, (K+1)*N, 784+N]`: support rows first, in order,
               the query row last.
            4. Run `self.layer1`, then `self.layer2` on its outputs (`[B, (K+1)*N, N]`),
               then `self.readout` on those (same shape): the logits.
            5. Reshape back to `[B, K+1, N, N]` and return it.
        """
        ### BEGIN SOLUTION
        B, K_plus_1, N, D = images.shape
        # Hide the query labels: zeros in a new tensor, never an in-place write to `labels`.
        support_labels = labels[:, :-1]  # [B, K, N, N]
        query_labels = torch.zeros_like(labels[:, -1:])  # [B, 1, N, N]
        model_labels = torch.cat([support_labels, query_labels], dim=1)  # [B, K+1, N, N]

        sequence = torch.cat([images, model_labels], dim=-1)  # [B, K+1, N, 784+N]
        sequence = sequence.reshape(B, K_plus_1 * N, D + N)  # [B, (K+1)*N, 784+N], row-major
        hidden, _ = self.layer1(sequence)  # [B, (K+1)*N, hidden_dim]
        outputs, _ = self.layer2(hidden)  # [B, (K+1)*N, N], each in (-1, 1)
        preds = self.readout(outputs)  # [B, (K+1)*N, N] logits, unbounded
        return preds.reshape(B, K_plus_1, N, N)  # [B, K+1, N, N]
        ### END SOLUTION

    def loss_function(self, preds: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of the query predictions; support rows contribute nothing.

        Args:
            preds: `[B, K+1, N, N]` logits from `forward`.
            labels: `[B, K+1, N, N]` one-hot labels.

        Returns:
            A differentiable scalar: the mean over the B*N query predictions (row K) of
            the cross-entropy between `preds[:, K]` and the class index of `labels[:, K]`.

        Outline:
            - Only the query row counts: the B*N query predictions, each scored against the
              class its one-hot label names.
            - The loss is their mean cross-entropy over logits (the model applies no
              softmax), a torch scalar that carries gradient to the model's weights.

        Steps:
            1. Keep only the query row, `preds[:, -1]` and `labels[:, -1]`: `[B, N, N]`.
            2. Flatten both to `[B*N, N]`; the targets are the labels' argmax, `[B*N]`.
            3. Return `F.cross_entropy(logits, targets)`, a torch scalar (no `.item()`).
        """
        ### BEGIN SOLUTION
        N = preds.shape[-1]
        query_logits = preds[:, -1].reshape(-1, N)  # [B*N, N]
        query_targets = labels[:, -1].reshape(-1, N).argmax(dim=-1)  # [B*N]
        return F.cross_entropy(query_logits, query_targets)
        ### END SOLUTION
