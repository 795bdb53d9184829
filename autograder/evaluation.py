"""Train the submission's MANN in the child and measure it: the grader's side.

Letters: S training steps, B tasks per step, T scored meta-test tasks, V stop-check tasks, K
shots, N classes, C characters, D drawings, 784 pixels.

Training runs in the child (the submission's forward and backward) with the kit's recipe
(`kit.step`: LSTM initialisation, Adam with warmup and cosine schedule, clipping), on
meta-train tasks that either the grader samples (`kit.episodes.sample_tasks`, sent as indices
into the meta-train images) or the submission's own DataGenerator draws. It runs in segments
of `Budget.segment` steps; after each, the grader measures the model on V stop-check tasks
and stops as soon as it reaches `stop_at`, or gives up when it is still at chance at
`give_up` steps. The stop-check tasks are meta-test tasks drawn independently of the T scored
ones (another seed): meta-val would do too, but its characters score about a point apart from
meta-test's (the plateau study: 1-shot 2-way meta-test 0.6-1.3 points below meta-val, 2-shot
2-way 3 points above), a gap the stop margin would have to absorb; two independent samples of
the same split differ only by sampling noise (standard deviation about 0.6 points). The grader
samples all tasks itself, sends the child the images and the labels with the query row ZEROED,
and computes the accuracy of the returned predictions `[T, K+1, N, N]` against the true
labels, which never leave this process. The accuracy checks and `autograder.calibrate` both
go through `train_and_evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from autograder.feedback import BUGS, fail
from autograder.runner import ChildSession
from data.omniglot import as_pixels
from kit.accuracy import query_accuracy
from kit.episodes import sample_tasks
from kit.recipe import Recipe

# This process never imports torch (218 MB): the children train and predict, the grader only
# samples tasks and scores predictions with NumPy. Its images stay the cache's uint8 (splits
# loaded raw), converted with `as_pixels` only where a child needs float32.

# Timeout allowance per step of 128 tasks: ~10x the reference's (1-shot 2-way, one thread,
# about 0.02 s idle, 0.1 s measured on the 2 busy cores).
SECONDS_PER_STEP = 0.4
VAL_TASKS = 2000  # stop-check tasks between segments: standard error at most 1.1 points
CHANCE_MARGIN = 0.05  # within this of 1/N, a model is "at chance"


@dataclass(frozen=True)
class Budget:
    """How the grader trains: K, N, at most `steps` steps of `batch_size` tasks, the kit's
    recipe at `learning_rate`, hidden units, and `segment` steps between stop checks."""

    num_shots: int
    num_classes: int
    steps: int
    batch_size: int = 128
    learning_rate: float = Recipe().learning_rate
    hidden_dim: int = 128
    segment: int = 100

    def recipe(self) -> Recipe:
        return replace(Recipe(), learning_rate=self.learning_rate)


@dataclass
class Outcome:
    """One training in the child and its measurements.

    stopped: "target" (the stop check reached `stop_at`), "budget" (all steps), "chance" (still at
    chance at `give_up` steps) or "diverged" (a NaN or infinite loss; `diverged` says where).
    """

    accuracy: float | None  # meta-test query accuracy; None when the training diverged
    steps: int  # steps trained
    stopped: str
    val: list[tuple[int, float]] = field(default_factory=list)  # (step, stop-check accuracy)
    diverged: str | None = None


def save_train_images(train_images: np.ndarray, folder: Path) -> Path:
    """The meta-train images `[C, D, 784]` (float or the cache's uint8) as one read-only
    float32 .npy the children memory-map; written a slice at a time, so that this process
    never holds a float32 copy of them."""
    path = Path(folder) / "train_images.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=train_images.shape)
    for start in range(0, len(train_images), 100):
        out[start : start + 100] = as_pixels(train_images[start : start + 100])
    out.flush()
    del out
    path.chmod(0o444)
    return path


def grader_batches(budget: Budget, train_images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """S batches from the kit's sampler, as indices `[S, B, K+1, N]` into the meta-train images
    flattened to `[C*D, 784]`, and labels `[S, B, K+1, N, N]`.

    `sample_tasks` run on a table whose "image" is its own flat index gives exactly the tasks it
    would give on the images, 4 bytes per image instead of 3136.
    """
    C, D, _ = train_images.shape
    table = np.arange(C * D, dtype=np.float32).reshape(C, D, 1)  # [C, D, 1], exact below 2^24
    rng = np.random.default_rng([seed, budget.num_shots, budget.num_classes])
    index, labels = [], []
    for _ in range(budget.steps):
        flat, batch_labels = sample_tasks(
            table, budget.num_classes, budget.num_shots, budget.batch_size, rng
        )
        index.append(flat[..., 0].astype(np.int32))  # [B, K+1, N]
        labels.append(batch_labels)
    if not index:  # an untrained model (calibration's chance baseline)
        K, N, B = budget.num_shots, budget.num_classes, budget.batch_size
        return {
            "index": np.zeros((0, B, K + 1, N), np.int32),
            "labels": np.zeros((0, B, K + 1, N, N), np.float32),
        }
    return {"index": np.stack(index), "labels": np.stack(labels)}


def train_in_child(
    child: ChildSession,
    budget: Budget,
    arrays: dict[str, np.ndarray],
    train_images_file: Path,
    sampler: str,
    seed: int,
    steps: int,
    resume: bool,
) -> dict:
    """Train the child's MANN `steps` more steps (a fresh, seeded one unless `resume`);
    sampler is "grader" (the segment's batches in `arrays`) or "student". Returns the child's
    result: steps trained so far, and `diverged` when the loss stopped being finite."""
    __tracebackhide__ = True
    K, N = budget.num_shots, budget.num_classes
    child.shared_arrays["train_images"] = train_images_file
    source = "the grader's tasks" if sampler == "grader" else "your DataGenerator"
    reply = child.call(
        "train",
        f"training your MANN (K={K}, N={N}) on {source}",
        timeout=60 + SECONDS_PER_STEP * steps,
        arrays=arrays,
        N=N,
        K=K,
        hidden=budget.hidden_dim,
        seed=seed,
        recipe=asdict(budget.recipe()),
        total_steps=budget.steps,
        steps=steps,
        resume=resume,
        batch_size=budget.batch_size,
        sampler=sampler,
    )
    return reply.result


def query_tasks(images: np.ndarray, num_shots: int, num_classes: int, num_tasks: int, seed):
    """T seeded tasks of `images` and the labels with the query row zeroed, for the child."""
    K, N = num_shots, num_classes
    rng = np.random.default_rng(seed)
    tasks, labels = sample_tasks(images, N, K, num_tasks, rng)  # [T, K+1, N, 784], [.., N]
    tasks = as_pixels(tasks)  # float32, whether the split is raw uint8 or float
    hidden = labels.copy()
    hidden[:, K] = 0  # the child never sees the query labels
    return tasks, labels, hidden


def accuracy_of(child, tasks, labels, hidden, what: str, keep: str | None = None) -> float:
    """Query accuracy of the child's model on `tasks` (sent once when `keep` names them)."""
    __tracebackhide__ = True
    arrays = {"images": tasks, "labels": hidden} if tasks is not None else None
    params = {"keep": keep} if keep else {}
    reply = child.call("predict", what, timeout=120, arrays=arrays, **params)
    preds = reply.arrays["preds"]
    if preds.shape != labels.shape:
        fail(BUGS["forward_shape"], f"predictions {preds.shape}, expected {labels.shape}")
    if not np.issubdtype(preds.dtype, np.floating) or not np.isfinite(preds).all():
        fail(BUGS["forward_shape"], f"predictions of dtype {preds.dtype} or not finite")
    return float(query_accuracy(preds, labels).mean())


def meta_test_accuracy(
    child,
    test_images: np.ndarray,
    num_shots: int,
    num_classes: int,
    num_tasks: int,
    seed: int,
    what: str,
) -> float:
    """Query accuracy of the child's trained MANN on `num_tasks` tasks from `test_images`.

    Args:
        child: a `ChildSession` whose last `train` call left a trained model.
        test_images: `[C, D, 784]`, the meta-test characters (grader side only), float or
            the cache's uint8.
        seed: seed of the tasks; the same seed gives the same tasks on every run.
        what: the submission code the call runs, for messages.
    """
    __tracebackhide__ = True
    K, N = num_shots, num_classes
    tasks, labels, hidden = query_tasks(test_images, K, N, num_tasks, [seed, K, N])
    return accuracy_of(child, tasks, labels, hidden, what)


def train_and_evaluate(
    child: ChildSession,
    budget: Budget,
    splits: dict,
    train_images_file: Path,
    sampler: str,
    seed: int,
    eval_tasks: int,
    eval_seed: int,
    stop_at: float | None = None,
    give_up: int | None = None,
    val_tasks: int = VAL_TASKS,
    on_segment: Callable[[int, float], None] | None = None,
) -> Outcome:
    """Train in the child segment by segment, measuring `val_tasks` stop-check tasks (meta-test
    characters, seed `[eval_seed, K, N, 1]`) between segments; then score `eval_tasks`
    meta-test tasks (seed `[eval_seed, K, N]`) unless the training diverged.

    Args:
        stop_at: stop as soon as the stop-check accuracy reaches it (None: train every step).
        give_up: stop when the stop-check accuracy is still within `CHANCE_MARGIN` of chance
            after this many steps (None: never).
        on_segment: called with (steps so far, stop-check accuracy) after every segment.
    """
    __tracebackhide__ = True
    K, N = budget.num_shots, budget.num_classes
    what = f"your trained MANN (K={K}, N={N})"
    train_images = splits["train"].images
    batches = grader_batches(budget, train_images, seed) if sampler == "grader" else None
    val = query_tasks(splits["test"].images, K, N, val_tasks, [eval_seed, K, N, 1])
    outcome = Outcome(accuracy=None, steps=0, stopped="budget")
    while outcome.steps < budget.steps or budget.steps == 0:
        count = min(budget.segment, budget.steps - outcome.steps)
        start = outcome.steps
        arrays = {k: v[start : start + count] for k, v in batches.items()} if batches else {}
        result = train_in_child(
            child, budget, arrays, train_images_file, sampler, seed, count, resume=start > 0
        )
        if result.get("diverged"):
            outcome.steps = result["steps"]
            outcome.stopped, outcome.diverged = "diverged", result["diverged"]
            return outcome
        if budget.steps == 0 or result["steps"] == outcome.steps:  # untrained, or no batches
            break
        outcome.steps = result["steps"]
        tasks, labels, hidden = val
        if outcome.val:  # the child kept the stop-check tasks of the first segment
            tasks = hidden = None
        accuracy = accuracy_of(child, tasks, labels, hidden, what, keep="stop")
        outcome.val.append((outcome.steps, accuracy))
        if on_segment is not None:
            on_segment(outcome.steps, accuracy)
        if stop_at is not None and accuracy >= stop_at:
            outcome.stopped = "target"
            break
        at_chance = accuracy < 1 / N + CHANCE_MARGIN
        if give_up is not None and outcome.steps >= give_up and at_chance:
            outcome.stopped = "chance"
            break
    outcome.accuracy = meta_test_accuracy(
        child, splits["test"].images, K, N, eval_tasks, eval_seed, what
    )
    return outcome


def train_until_learned(
    child: ChildSession,
    budget: Budget,
    splits: dict,
    train_images_file: Path,
    sampler: str,
    first_seed: int,
    tries: int,
    eval_tasks: int,
    eval_seed: int,
    stop_at: float | None,
    give_up: int | None,
) -> list[Outcome]:
    """Up to `tries` fresh trainings (seeds first_seed, first_seed+1, ...) in one child: a new
    model only after one gave up still at chance (a plateau, which even the reference meets on
    some seeds); one that learned, however well, or diverged is final."""
    outcomes: list[Outcome] = []
    for attempt in range(tries):
        outcome = train_and_evaluate(
            child, budget, splits, train_images_file, sampler, first_seed + attempt,
            eval_tasks, eval_seed, stop_at=stop_at, give_up=give_up,
        )  # fmt: skip
        outcomes.append(outcome)
        if outcome.stopped != "chance":
            break
    return outcomes
