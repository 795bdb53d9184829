"""The transfer-learning baseline: pretrain a classifier, then fine-tune it on each support set.

Letters: B tasks per batch, K shots, N classes, C meta-train characters, E embedding size,
M drawings in a pretraining batch.

This is the lecture's alternative to meta-learning. `pretrain` trains the conv encoder with an
ordinary C-way softmax over the meta-train characters (no tasks, no episodes). For each test
task, `forward` then fits a fresh N-way layer on the task's K*N labelled support drawings and
predicts the query drawings:

- `mode="head"`: the encoder is frozen; only the new last layer is trained. All B tasks of a
  batch are fitted at once (one weight matrix per task, one batched Adam optimiser), which is
  exact because the tasks' losses share no parameter.
- `mode="all"`: every layer is trained, the encoder with a 10x smaller learning rate than the
  new layer, one task at a time on a copy of the pretrained weights.

The new layer starts from the support class means of the normalised features (the "weight
imprinting" initialisation), which makes a few steps enough. Batch norm keeps its pretrained
statistics while fine-tuning: K*N drawings are too few to estimate them.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from learners.common import query_loss, support_labels
from learners.encoder import ConvEncoder


class FineTune(nn.Module):
    """A pretrained encoder fine-tuned per task: `forward(images, labels) -> [B, K+1, N, N]`.

    Args:
        num_classes: N; num_shots: K (any N and K work: the task head is built per task).
        num_pretrain_classes: C, the classes of the pretraining softmax.
        mode: "head" (last layer only) or "all" (all layers, encoder at lr / 10).
        steps, learning_rate: of the per-task fine-tuning (Adam).
        channels: width of the conv encoder.
    """

    def __init__(
        self,
        num_classes: int,
        num_shots: int,
        num_pretrain_classes: int = 4400,
        mode: str = "head",
        steps: int = 50,
        learning_rate: float = 0.01,
        channels: int = 64,
    ) -> None:
        super().__init__()
        if mode not in ("head", "all"):
            raise ValueError(f"unknown fine-tuning mode {mode!r}: use 'head' or 'all'")
        self.num_classes = num_classes
        self.num_shots = num_shots
        self.mode = mode
        self.steps = steps
        self.learning_rate = learning_rate
        self.encoder = ConvEncoder(channels)
        self.classifier = nn.Linear(self.encoder.dim, num_pretrain_classes)  # pretraining only
        self.scale = 10.0  # logits = scale * cosine: normalised features need a temperature

    def pretrain_loss(self, images: Tensor, targets: Tensor) -> Tensor:
        """Cross-entropy of the C-way classifier: images `[M, 784]`, targets `[M]` in [0, C)."""
        return F.cross_entropy(self.classifier(self.encoder(images)), targets)

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """images `[B, K+1, N, 784]`, labels `[B, K+1, N, N]` -> logits `[B, K+1, N, N]`.

        Fine-tunes on rows 0..K-1 (gradients are enabled inside, even under `no_grad`), then
        predicts every row. The pretrained weights are never changed.
        """
        if self.mode == "head":
            return self._fit_heads(images, labels)
        return torch.stack(
            [self._fit_all(images[b : b + 1], labels[b : b + 1])[0] for b in range(len(images))]
        )

    def _features(self, encoder: nn.Module, images: Tensor) -> Tensor:
        return F.normalize(encoder(images), dim=-1)  # [..., E], unit length

    def _imprinted_head(self, support: Tensor, onehot: Tensor) -> Tensor:
        """Initial weights `[B, E, N]`: the normalised class means of the support features."""
        means = torch.einsum("bkme,bkmn->bne", support, onehot)  # [B, N, E] (sums, then norm)
        return F.normalize(means, dim=-1).transpose(1, 2)  # [B, E, N]

    def _fit_heads(self, images: Tensor, labels: Tensor) -> Tensor:
        was_training = self.encoder.training
        self.encoder.eval()  # pretrained batch-norm statistics, see the module docstring
        with torch.no_grad():
            features = self._features(self.encoder, images)  # [B, K+1, N, E]
        self.encoder.train(was_training)
        K = images.shape[1] - 1
        onehot = support_labels(labels)  # [B, K, N, N]
        targets = onehot.argmax(-1)  # [B, K, N]
        with torch.enable_grad():
            weight = self._imprinted_head(features[:, :K], onehot).detach().requires_grad_()
            optimizer = torch.optim.Adam([weight], lr=self.learning_rate)
            for _ in range(self.steps):
                logits = self.scale * features[:, :K] @ weight.unsqueeze(1)  # [B, K, N, N]
                # Sum over tasks (mean within each): every task's head gets its own gradient.
                loss = F.cross_entropy(logits.flatten(1, 2).transpose(1, 2), targets.flatten(1))
                loss = loss * len(images)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return (self.scale * features @ weight.detach().unsqueeze(1)).detach()  # [B, K+1, N, N]

    def _fit_all(self, images: Tensor, labels: Tensor) -> Tensor:
        """One task, `[1, K+1, N, 784]`: fine-tune a copy of the encoder and a new head."""
        encoder = copy.deepcopy(self.encoder).eval()
        K = images.shape[1] - 1
        onehot = support_labels(labels)  # [1, K, N, N]
        targets = onehot.argmax(-1).flatten()  # [K*N]
        with torch.enable_grad():
            for parameter in encoder.parameters():
                parameter.requires_grad_(True)
            with torch.no_grad():
                initial = self._imprinted_head(self._features(encoder, images[:, :K]), onehot)
            weight = initial[0].clone().requires_grad_()  # [E, N]
            optimizer = torch.optim.Adam(
                [
                    {"params": list(encoder.parameters()), "lr": self.learning_rate / 10},
                    {"params": [weight], "lr": self.learning_rate},
                ]
            )
            support = images[:, :K].reshape(-1, images.shape[-1])  # [K*N, 784]
            for _ in range(self.steps):
                logits = self.scale * self._features(encoder, support) @ weight  # [K*N, N]
                loss = F.cross_entropy(logits, targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            return self.scale * self._features(encoder, images) @ weight  # [1, K+1, N, N]

    def loss_function(self, preds: Tensor, labels: Tensor) -> Tensor:
        """Query-row cross-entropy, `learners.common.query_loss`."""
        return query_loss(preds, labels)


def pretrain(
    model: FineTune,
    images: np.ndarray,
    *,
    seconds: float,
    max_steps: int | None = None,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    autocast: bool = False,
    progress: bool = True,
) -> tuple[int, float]:
    """Train `model.encoder` and `model.classifier` as a C-way classifier of `images [C, D, 784]`.

    Runs until `seconds` of training have passed or `max_steps` steps, with a cosine learning
    rate schedule over that budget. Returns (steps, seconds).
    """
    C, D, _ = images.shape
    if model.classifier.out_features != C:
        raise ValueError(
            f"the model classifies {model.classifier.out_features} classes, data has {C}"
        )
    device = torch.device(device)
    flat = torch.from_numpy(images.reshape(C * D, -1))  # [C*D, 784]
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    steps, started = 0, time.perf_counter()
    bar = tqdm(desc="pretrain", unit="step", disable=not progress, dynamic_ncols=True)
    while True:
        elapsed = time.perf_counter() - started
        done = max(elapsed / seconds, steps / max_steps if max_steps else 0.0)
        if done >= 1:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * 0.5 * (1 + np.cos(np.pi * done))
        index = torch.from_numpy(rng.integers(0, C * D, batch_size))  # [M]
        batch, targets = flat[index].to(device), (index // D).to(device)  # [M, 784], [M]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = model.pretrain_loss(batch, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        steps += 1
        bar.update()
        if steps % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return steps, time.perf_counter() - started
