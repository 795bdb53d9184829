"""Part 1 of the assignment, `episodes.ipynb`: draw tasks with the student's DataGenerator,
look at them, and test their properties (autograded, some tests hidden), then a written
question on why the query row is shuffled."""

from __future__ import annotations

import nbformat

from publish.cells import (
    HOW_TO_WORK,
    PRINT_CODE,
    STUDENT_CODE,
    code,
    md,
    notebook,
    pick,
    question,
    setup,
    solution,
    tests,
)
from publish.hints import DEFAULT_LEVEL


def build(level: str = DEFAULT_LEVEL) -> nbformat.NotebookNode:
    """The nbgrader source of the notebook, with the instructions of hint level `level`."""
    return notebook(
        [
            md(
                """
# Part 1: Episodes, what a black-box meta-learner reads

A black-box meta-learner $f_\\theta$ reads a whole task: its training set $D_{tr}$ (the
**support set**, $K$ labelled drawings of each of $N$ characters) and its test set $D_{ts}$ (the
**query set**, one further drawing of each character), and predicts the query labels. In this
notebook you draw such tasks with **your** `DataGenerator` (`load_data.py`), look at them, and
check their properties.
"""
                + HOW_TO_WORK
            ),
            code(
                setup(
                    STUDENT_CODE + PRINT_CODE,
                    "import numpy as np",
                    "import torch",
                    "from data import load_splits",
                    "from kit.loader import task_loader",
                    "from kit.plots import plot_task, plot_tasks",
                    "from kit.submission import load_submission",
                ),
                locked="setup",
            ),
            code(
                """
splits = load_splits()  # {"train", "val", "test"} -> Split, images float32 [C, 20, 784]
submission = load_submission(CODE)  # your load_data.py and models.py
for name, split in splits.items():
    print(f"meta-{name}: {len(split.names)} characters, images {split.images.shape}")
""",
                locked="load-data",
            ),
            md(
                pick(
                    level,
                    steps="""
## 1. Draw a batch of tasks

Complete `make_batch`: build a `DataGenerator` from **your** code
(`submission.load_data.DataGenerator`) on the given images, with the given $N$, $K$ and seed,
and draw **one** batch of $B$ tasks from it with the kit's
`task_loader(generator, batch_size=B, seed=seed)`, a `torch.utils.data.DataLoader` that stacks
$B$ calls of your `_sample`. Two lines are enough.
""",
                    outline="""
## 1. Draw a batch of tasks

Complete `make_batch`: it returns **one** batch of $B$ tasks drawn by a `DataGenerator` of
**your** code (in `submission.load_data`) on the given images, with the given $N$, $K$ and
seed. The batch must come through the kit's `task_loader` (imported above), the
`torch.utils.data.DataLoader` that stacks $B$ calls of your `_sample`: the grader batches your
tasks the same way.
""",
                )
            ),
            solution(
                "make-batch",
                '''
def make_batch(images, num_classes, num_shots, batch_size, seed=0):
    """One batch of tasks drawn by your DataGenerator.

    Args:
        images: float32 `[C, D, 784]`, the characters of one split.
        num_classes: N; num_shots: K; batch_size: B; seed: the generator's seed.

    Returns:
        images `[B, K+1, N, 784]` and labels `[B, K+1, N, N]`, float32 torch tensors.
    """
    ### BEGIN SOLUTION
    generator = submission.load_data.DataGenerator(images, num_classes, num_shots, seed=seed)
    return next(iter(task_loader(generator, batch_size=batch_size, seed=seed)))
    ### END SOLUTION
''',
                level,
            ),
            code(
                """
N, K, B = 3, 2, 8  # 3-way, 2-shot, 8 tasks
images, labels = make_batch(splits["train"].images, N, K, B, seed=0)
print("images", tuple(images.shape), images.dtype, "  expected [B, K+1, N, 784]")
print("labels", tuple(labels.shape), labels.dtype, "  expected [B, K+1, N, N]")
""",
                locked="draw-batch",
            ),
            tests(
                "test-batch-shapes",
                1,
                """
# Test: a batch has the shapes and dtypes of the spec.
assert tuple(images.shape) == (B, K + 1, N, 784), (
    f"images have shape {tuple(images.shape)}, expected [B, K+1, N, 784] = {(B, K + 1, N, 784)}"
)
assert tuple(labels.shape) == (B, K + 1, N, N), (
    f"labels have shape {tuple(labels.shape)}, expected [B, K+1, N, N] = {(B, K + 1, N, N)}"
)
assert images.dtype == torch.float32, f"images are {images.dtype}: return float32 arrays"
assert labels.dtype == torch.float32, f"labels are {labels.dtype}: return float32 one-hot arrays"
print("shapes and dtypes: OK")
""",
            ),
            tests(
                "test-labels-in-class-order",
                2,
                """
# Test: labels are one-hot; support row k, column n is labelled e_n (class order).
assert torch.all((labels == 0) | (labels == 1)) and torch.all(labels.sum(-1) == 1), (
    "every label must be one-hot: N values, a single 1.0"
)
support_classes = labels[:, :K].argmax(-1)  # [B, K, N]
assert torch.all(support_classes == torch.arange(N)), (
    "support row k, column n must carry label e_n: keep the support rows in class order "
    "and shuffle only the query row"
)
### BEGIN HIDDEN TESTS
query_classes = labels[:, K].argmax(-1)  # [B, N]
assert torch.all(query_classes.sort(-1).values == torch.arange(N)), (
    "the query row must hold one example of each class: shuffle it by a permutation"
)
### END HIDDEN TESTS
print("labels: OK")
""",
            ),
            md(
                """
## 2. Look at your tasks

One task drawn as a grid: the support rows with their labels, then the query row (orange
frame) with its labels, titled "query (shuffled)" when its order differs from the class order
and "query (class order)" when it does not. Then a few tasks of the batch side by side. The
figures are saved as PNG in `figures/`.
"""
            ),
            code(
                """
fig = plot_task(images[0], labels[0], path=figure_path("episode_task.png"))
""",
                locked="plot-task",
            ),
            code(
                """
fig = plot_tasks(images, labels, count=3, path=figure_path("episode_tasks.png"))
""",
                locked="plot-tasks",
            ),
            md(
                """
## 3. Episode properties, checked on images that know who they are

Real drawings do not say which character and drawing they are, so the tests below feed your
`make_batch` synthetic "images" whose pixel 0 holds the character index and pixel 1 the drawing
index. They check that every support column holds one character, that the $N$ characters are
distinct, that the query labels name the right characters, that no drawing is used twice in a
task, that the query order is shuffled, and that the seed fixes the tasks.
"""
            ),
            code(
                """
C, D = 30, 20  # 30 characters, 20 drawings each
identity = np.zeros((C, D, 784), dtype=np.float32)  # [C, D, 784]
identity[:, :, 0] = np.arange(C)[:, None]  # pixel 0: the character
identity[:, :, 1] = np.arange(D)[None, :]  # pixel 1: the drawing
ids_N, ids_K = 4, 3
ids_images, ids_labels = make_batch(identity, ids_N, ids_K, batch_size=200, seed=1)
character = ids_images[..., 0].long()  # [B, K+1, N]
drawing = ids_images[..., 1].long()  # [B, K+1, N]
classes = character[:, 0]  # [B, N], the character of each class (support row 0)
""",
                locked="identity-images",
            ),
            tests(
                "test-columns-are-characters",
                2,
                """
# Test: every support column holds one character, and a task's N characters are distinct.
assert torch.all(character[:, :ids_K] == classes[:, None]), (
    "support column n must hold K drawings of the same character (class n)"
)
ordered = classes.sort(-1).values
assert torch.all(ordered[:, 1:] != ordered[:, :-1]), (
    "a task must have N distinct characters: draw them without replacement"
)
### BEGIN HIDDEN TESTS
query_label = ids_labels[:, ids_K].argmax(-1)  # [B, N]
assert torch.equal(character[:, ids_K], torch.gather(classes, 1, query_label)), (
    "query image j must be a drawing of the class its label names: permute images and "
    "labels of the query row by the same permutation"
)
# The query drawing of each class, put back in class order: [B, N].
query_drawing = torch.empty_like(drawing[:, ids_K]).scatter_(1, query_label, drawing[:, ids_K])
used = torch.cat([drawing[:, :ids_K], query_drawing[:, None]], dim=1).sort(1).values
assert torch.all(used[:, 1:] != used[:, :-1]), (
    "a class used the same drawing twice in one task: its K support drawings and its query "
    "drawing must be distinct (sample K+1 drawings without replacement)"
)
### END HIDDEN TESTS
print("characters and drawings: OK")
""",
            ),
            tests(
                "test-query-is-shuffled",
                2,
                """
# Test: the query order is shuffled, so that a query's position says nothing about its label.
query_label = ids_labels[:, ids_K].argmax(-1)  # [B, N]
in_class_order = torch.all(query_label == torch.arange(ids_N), dim=-1)  # [B]
assert not torch.all(in_class_order), (
    "every query row is in class order: shuffle the query row (images and labels together)"
)
### BEGIN HIDDEN TESTS
# Column j holds class j in 1/N of the tasks when the order is uniformly random.
agreement = (query_label == torch.arange(ids_N)).float().mean().item()
assert abs(agreement - 1 / ids_N) < 0.1, (
    f"query column j holds class j in {100 * agreement:.0f}% of the tasks, expected about "
    f"{100 / ids_N:.0f}%: draw a fresh permutation for every task"
)
### END HIDDEN TESTS
print("query order: OK")
""",
            ),
            tests(
                "test-seeding",
                1,
                """
# Test: the same seed gives the same tasks (a hidden test checks that different seeds differ).
again, _ = make_batch(identity, ids_N, ids_K, batch_size=200, seed=1)
assert torch.equal(again, ids_images), "the same seed must give the same tasks: use self.rng"
### BEGIN HIDDEN TESTS
other, _ = make_batch(identity, ids_N, ids_K, batch_size=200, seed=2)
assert not torch.equal(other, ids_images), (
    "different seeds gave the same tasks: build self.rng from the seed and take every "
    "random number from it"
)
### END HIDDEN TESTS
print("seeding: OK")
""",
            ),
            md(
                """
## 4. Why shuffle the query?

The cell below scores a "learner" that never looks at an image: it predicts class $n$ for query
column $n$. Then answer the question.
"""
            ),
            code(
                """
position_guess = torch.arange(ids_N)  # column n -> class n
accuracy = (ids_labels[:, ids_K].argmax(-1) == position_guess).float().mean().item()
print(f"'column n is class n' gets {100 * accuracy:.0f}% of the queries right", end=" ")
print(f"on {ids_labels.shape[0]} of your {ids_N}-way tasks (chance: {100 / ids_N:.0f}%)")
""",
                locked="position-baseline",
            ),
            question(
                "answer-why-shuffle",
                3,
                "Question",
                """
Why must the query row be shuffled? What would a MANN learn, and
what accuracies would you see during training and at meta-test time, if it were not?
""",
                """
The query labels are hidden from the learner, but their order is not: if the query row were
in class order (column n always class n), the position of a query image in the sequence would
give its label away. The LSTM reads the query examples one after the other, so it can simply
count them and output class 0, 1, ..., N-1 in turn, ignoring the images. Training would then
reach ~100% query accuracy quickly (the loss drops to ~0), but the network would have learned
nothing about comparing a query with the support set, so on any shuffled task (or any task
whose query order differs) it would be at chance, 1/N. Shuffling the query row, images and
labels by the same permutation, makes the position uninformative (the cell above gives about
1/N for the position rule), so the only way to predict the label is to match the query drawing
with the labelled support drawings, which is the few-shot learning we want.
""",
            ),
        ],
        "episodes",
    )
