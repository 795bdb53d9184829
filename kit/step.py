"""One optimisation step of the kit's trainer and the recipe around it; imports only torch.

Letters: B tasks per batch, K shots, N classes, 784 = 28 x 28 pixels.

`kit.train` (the CLI and the notebooks) and the grader's child process both train with what
is here, so a model is trained the same way wherever it is graded or studied. The module
imports nothing but the standard library, torch and two torch-free kit modules (`kit.recipe`,
`kit.accuracy`): no data, no sampler, no plotting.

The recipe (`Recipe`, in the torch-free `kit.recipe` so that the grader's own process can name it
without importing torch) is everything the trainer owns and the student's code does not:

- `init_lstms`: every `nn.LSTM` of the model gets orthogonal recurrent weights, Xavier input
  weights and zero biases except the forget gate's, set to `forget_bias`. PyTorch's default
  (uniform in +-1/sqrt(hidden)) leaves the spec's MANN at chance for thousands of steps on
  some seeds (the plateau study, `benchmarks/plateau_study.py`);
- Adam with a linear warmup then a cosine decay of the learning rate (`make_optimizer`);
- gradient-norm clipping in `train_step`.

A NaN or infinite loss raises `Diverged` naming the step, instead of training on garbage.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from kit.accuracy import query_accuracy
from kit.recipe import Recipe

__all__ = ["Diverged", "Recipe", "init_lstms", "make_optimizer", "prepare", "query_accuracy",
           "train_step"]  # fmt: skip


class Diverged(FloatingPointError):
    """The loss became NaN or infinite: training stopped at `step`."""

    def __init__(self, step: int | None, loss: float) -> None:
        self.step, self.loss = step, loss
        where = f"at step {step}" if step is not None else "during training"
        super().__init__(
            f"training diverged {where}: the loss is {loss} (not finite). Likely causes: a "
            "log or division of zero in loss_function (use F.cross_entropy on logits, not a "
            "log of softmax outputs), images or labels that are not finite or not float32, "
            "or a learning rate too high for the model"
        )


def init_lstms(model: nn.Module, forget_bias: float = 1.0) -> int:
    """Initialise every `nn.LSTM` inside `model` in place; returns how many were found.

    Per layer and direction, each gate's `[H, H]` block of the recurrent weights `weight_hh`
    is orthogonal, each gate's `[H, in]` block of the input weights `weight_ih` is Xavier
    uniform, and the biases are zero except the forget gate's (gate order i, f, g, o), which
    `bias_ih` sets to `forget_bias`. Other modules are left as they are.
    """
    count = 0
    for module in model.modules():
        if not isinstance(module, nn.LSTM):
            continue
        count += 1
        H = module.hidden_size
        with torch.no_grad():
            for name, weight in module.named_parameters():
                gates = weight.split(H, dim=0)  # 4 gates, each [H, ...] or [H]
                if name.startswith("weight_hh"):
                    for gate in gates:
                        nn.init.orthogonal_(gate)  # semi-orthogonal if not square
                elif name.startswith("weight_ih"):
                    for gate in gates:
                        nn.init.xavier_uniform_(gate)
                elif name.startswith("weight_hr"):  # projections (proj_size > 0)
                    nn.init.orthogonal_(weight)
                elif name.startswith("bias"):
                    weight.zero_()
                    if name.startswith("bias_ih"):
                        gates[1].fill_(forget_bias)
    return count


def make_optimizer(
    model: nn.Module, recipe: Recipe, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Adam at `recipe.learning_rate` and its per-step schedule over `total_steps` steps."""
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate)
    warmup, total = max(recipe.warmup_steps, 0), max(total_steps, 1)

    def factor(step: int) -> float:  # step 0 is the first optimisation step
        if step < warmup:
            return (step + 1) / warmup
        if recipe.schedule == "cosine":
            progress = min((step - warmup) / max(total - warmup, 1), 1.0)
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0

    if recipe.schedule not in ("cosine", "constant"):
        raise ValueError(f"unknown schedule {recipe.schedule!r}: use cosine or constant")
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def prepare(model: nn.Module, recipe: Recipe, total_steps: int):
    """Apply the recipe's initialisation to `model`; return its optimiser and scheduler."""
    if recipe.init == "orthogonal":
        init_lstms(model, recipe.forget_bias)
    elif recipe.init != "default":
        raise ValueError(f"unknown init {recipe.init!r}: use orthogonal or default")
    return make_optimizer(model, recipe, total_steps)


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: Tensor,
    labels: Tensor,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    clip_norm: float | None = None,
    step: int | None = None,
) -> tuple[float, float]:
    """One optimisation step on a batch `[B, K+1, N, 784]`, `[B, K+1, N, N]`.

    Clips the gradient norm to `clip_norm` when given and advances `scheduler` when given.
    Returns the batch's query loss and query accuracy (before the update); raises `Diverged`
    (naming `step`) when the loss is not finite, before any update.
    """
    preds = model(images, labels)  # [B, K+1, N, N]
    loss = model.loss_function(preds, labels)
    value = loss.item()
    if not math.isfinite(value):
        raise Diverged(step, value)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return value, query_accuracy(preds.detach(), labels).mean().item()
