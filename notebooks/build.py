"""Write the kit's notebooks from this file, their single source of truth.

    python notebooks/build.py            # write the three notebooks below
    python notebooks/build.py --check    # write nothing; exit 1 if a notebook differs (tests)

- `notebooks/blackbox/episodes.ipynb`, `notebooks/blackbox/learning_curves.ipynb`: the nbgrader
  source of the student assignment "blackbox" (solutions, hidden tests, points in the cell
  metadata). `python -m kit.release` turns them into the student notebooks in `assignment/`.
- `notebooks/demo.ipynb`: the TA's demo, the reference solution end to end.

Edit the cells here, never the .ipynb files: the tests fail when the two drift apart. The
notebook cells only call the kit (`kit.train`, `kit.episodes`, `kit.plots`, `data`), so that
there is one sampler, one trainer and one evaluator in the project.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ASSIGNMENT = "blackbox"

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


# Cells. nbgrader reads its metadata ("schema_version": 3) to know what each cell is.


def _cell(kind: str, source: str, grade_id: str | None, points: int | None, **flags):
    source = source.strip("\n")
    cell = (
        nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
    )
    if grade_id is not None:
        cell.metadata["nbgrader"] = {
            "grade": flags.get("grade", False),
            "grade_id": grade_id,
            "locked": flags.get("locked", False),
            "schema_version": 3,
            "solution": flags.get("solution", False),
            "task": False,
        }
        if points is not None:
            cell.metadata["nbgrader"]["points"] = points
    return cell


def md(source: str):
    """A markdown cell without nbgrader metadata."""
    return _cell("md", source, None, None)


def code(source: str, locked: str | None = None):
    """A code cell; `locked=<id>` makes it read-only (autograde restores its source)."""
    return _cell("code", source, locked, None, locked=locked is not None)


def solution(grade_id: str, source: str):
    """A code cell the student completes: `### BEGIN/END SOLUTION` regions become stubs."""
    return _cell("code", source, grade_id, None, solution=True)


def tests(grade_id: str, points: int, source: str):
    """An autograded test cell worth `points`; `### BEGIN/END HIDDEN TESTS` never reach students."""
    return _cell("code", source, grade_id, points, grade=True, locked=True)


def answer(grade_id: str, points: int, source: str):
    """A manually graded written answer; `source` (the model answer) becomes YOUR ANSWER HERE."""
    return _cell("md", source, grade_id, points, grade=True, solution=True)


def notebook(cells: list, name: str):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(nb.cells):  # stable ids, so that the files never drift
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        cell.id = grade_id or f"{name}-{index}"
    nbformat.validate(nb)
    return nb


BUDGET_PARAMETER = """
# Parameters: BUDGET = "full" trains for the full budgets (slow on a CPU, the spec's accuracies).
BUDGET = "small"  # tiny | small | full; $KIT_NOTEBOOK_BUDGET wins when set (tests, autograde)
"""

SETUP = """
# Setup: makes the kit importable (it lives in the repository that holds this notebook).
import sys
from pathlib import Path

for folder in [Path.cwd(), *Path.cwd().parents]:
    if (folder / "kit" / "__init__.py").is_file():
        sys.path.insert(0, str(folder))
        break

{imports}

%matplotlib inline

{settings}
"""

# The settings lines of a setup cell: the code folder, and the training budget if it trains.
STUDENT_CODE = """
CODE = code_folder(".")  # your load_data.py and models.py, next to this notebook ($KIT_CODE wins)
"""
TRAINING_BUDGET = """
BUDGET, TRAIN_BUDGET = budget(BUDGET)  # TRAIN_BUDGET: steps, batch size, tasks per evaluation
print(f"budget: {BUDGET} {TRAIN_BUDGET}")
"""
PRINT_CODE = """
print(f"code: {CODE}")
"""

HOW_TO_WORK = """
**How to work.** Your code lives in `load_data.py` and `models.py`, next to this notebook; this
notebook imports them afresh each time you run it (*Kernel > Restart & Run All* after an edit).
Cells that say `YOUR CODE HERE` are yours to complete, and cells that say `YOUR ANSWER HERE`
take your written answers. The cells with `assert`s are tests that give points: run them to
check your work. More tests are hidden and run only when your submission is graded, so passing
the visible ones is necessary, not sufficient. Do not edit the read-only cells.
"""


def setup(settings: str, *imports: str):
    """The setup cell's source: `imports` (plus kit.notebook's) in ruff's order, then the
    `settings` lines."""
    # Every notebook finds its code and saves figures; only those that train need a budget.
    names = ("budget, " if "budget(" in settings else "") + "code_folder, figure_path"
    lines = sorted({*imports, f"from kit.notebook import {names}"})
    third_party = [line for line in lines if line.split()[1].split(".")[0] in ("numpy", "torch")]
    first_party = [line for line in lines if line not in third_party]
    block = "\n".join(third_party) + ("\n\n" if third_party else "") + "\n".join(first_party)
    settings = "\n".join(line for line in settings.splitlines() if line.strip())
    return SETUP.format(imports=block, settings=settings)


def episodes_notebook():
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
                    "from kit.episodes import task_loader",
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
                """
## 1. Draw a batch of tasks

Complete `make_batch`: build a `DataGenerator` from **your** code
(`submission.load_data.DataGenerator`) on the given images, with the given $N$, $K$ and seed,
and draw **one** batch of $B$ tasks from it with the kit's
`task_loader(generator, batch_size=B, seed=seed)`, a `torch.utils.data.DataLoader` that stacks
$B$ calls of your `_sample`. Two lines are enough.
"""
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

One task drawn as a grid: the support rows in class order with their labels, then the query row
(orange frame) with its shuffled labels. Then a few tasks of the batch side by side. The figures
are saved as PNG in `figures/`.
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
# Test: the same seed gives the same tasks; different seeds give different tasks.
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
            md(
                """
**Question (3 points).** Why must the query row be shuffled? What would a MANN learn, and
what accuracies would you see during training and at meta-test time, if it were not?
"""
            ),
            answer(
                "answer-why-shuffle",
                3,
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


def learning_curves_notebook():
    return notebook(
        [
            md(
                """
# Part 2: Learning curves of your MANN

Here you train **your** MANN (`models.py`), fed by **your** `DataGenerator` (`load_data.py`),
with the kit's trainer `kit.train.train`, which evaluates on meta-val tasks as it goes and on
meta-test tasks at the end. You compare four task families, $(K, N)$ = (1, 2), (2, 2), (1, 3)
and (1, 4), and three hidden sizes, then answer three questions.

**Budgets.** `BUDGET = "small"` (the default) trains each run for 400 steps of 64 tasks: some
minutes for the whole notebook on a laptop CPU, enough to see 2-way tasks learned and the
families separate (3- and 4-way runs may still sit near chance: a MANN often stays on a
plateau before it starts to learn). `BUDGET = "full"` trains 3000 steps of 128 tasks per run, towards the
spec's reference accuracies: use a GPU or let it run for a while. The budget in force is
printed below.
"""
                + HOW_TO_WORK
            ),
            code(BUDGET_PARAMETER),
            code(
                setup(
                    STUDENT_CODE + PRINT_CODE + TRAINING_BUDGET,
                    "from data import load_splits",
                    "from kit.plots import plot_learning_curve_comparison",
                    "from kit.train import TrainConfig, train",
                ),
                locked="setup",
            ),
            code(
                """
splits = load_splits()  # {"train", "val", "test"} -> Split, images float32 [C, 20, 784]
""",
                locked="load-data",
            ),
            md(
                """
## 1. The $(K, N)$ grid

Complete `train_grid`. `kit.train.TrainConfig` describes a run (see `python -m kit.train
--help` for every field) and `kit.train.train(config, splits)` trains it with a progress bar
and returns a `RunResult`: `.history` (one row per meta-val evaluation: `step`, `val_loss`,
`val_accuracy`, ...), `.test` (the final meta-test evaluation) and `.model`.
"""
            ),
            solution(
                "train-grid",
                '''
def train_grid(grid, code, splits, train_budget):
    """Train one MANN per (K, N) of `grid` on your code; return {(K, N): RunResult}.

    Steps:
        1. For each (K, N), make `TrainConfig(num_shots=K, num_classes=N, code=str(code),
           **train_budget)`: your load_data.py feeds the training, your models.py learns.
        2. Train it with `train(config, splits)`.
        3. Return the results in a dict keyed by (K, N), in the order of `grid`.
    """
    ### BEGIN SOLUTION
    runs = {}
    for num_shots, num_classes in grid:
        config = TrainConfig(
            num_shots=num_shots, num_classes=num_classes, code=str(code), **train_budget
        )
        runs[num_shots, num_classes] = train(config, splits)
    return runs
    ### END SOLUTION
''',
            ),
            code(
                """
GRID = [(1, 2), (2, 2), (1, 3), (1, 4)]  # (K, N)
grid_runs = train_grid(GRID, CODE, splits, TRAIN_BUDGET)
""",
                locked="run-grid",
            ),
            tests(
                "test-grid-runs",
                2,
                """
# Test: one run per (K, N), trained for the budget, with its meta-val history and meta-test score.
assert list(grid_runs) == GRID, f"train_grid returned runs for {list(grid_runs)}, expected {GRID}"
for (K, N), run in grid_runs.items():
    assert (run.config.num_shots, run.config.num_classes) == (K, N), (
        f"the run stored under {(K, N)} was trained with K={run.config.num_shots}, "
        f"N={run.config.num_classes}"
    )
    assert run.history and run.history[-1]["step"] == TRAIN_BUDGET["steps"], (
        f"run {(K, N)} did not train for the budget's {TRAIN_BUDGET['steps']} steps: "
        "pass **train_budget to TrainConfig"
    )
    assert 0 <= run.test.accuracy <= 1, f"run {(K, N)}: meta-test accuracy {run.test.accuracy}"
### BEGIN HIDDEN TESTS
for (K, N), run in grid_runs.items():
    assert Path(run.config.code).resolve() == CODE.resolve(), (
        f"run {(K, N)} trained the code in {run.config.code}, not yours ({CODE}): "
        "pass code=str(code) to TrainConfig"
    )
    assert run.test.num_tasks == TRAIN_BUDGET["test_tasks"], (
        f"run {(K, N)} was tested on {run.test.num_tasks} tasks, the budget says "
        f"{TRAIN_BUDGET['test_tasks']}"
    )
### END HIDDEN TESTS
print("grid runs: OK")
""",
            ),
            code(
                """
labels = {(K, N): f"K={K}, N={N}" for K, N in grid_runs}
fig = plot_learning_curve_comparison(
    {labels[key]: run.history for key, run in grid_runs.items()},
    path=figure_path("learning_curves_grid.png"),
    title=f"Your MANN on four task families (budget: {BUDGET}), meta-val tasks",
    chance={labels[key]: 1 / key[1] for key in grid_runs},
)
for (K, N), run in grid_runs.items():
    print(f"K={K}, N={N}: meta-test accuracy {run.test}, chance {100 / N:.0f}%")
""",
                locked="plot-grid",
            ),
            md(
                """
## 2. Hidden size

The size of the first LSTM is the learner's memory. Complete `train_hidden_sizes`, which
trains 1-shot 3-way runs with 8, 128 and 256 hidden units. With the small budget all three
may still be on the plateau at chance; compare them with `BUDGET = "full"`.
"""
            ),
            solution(
                "train-hidden-sizes",
                '''
def train_hidden_sizes(hidden_dims, num_shots, num_classes, code, splits, train_budget):
    """Train one MANN per hidden size on K-shot N-way tasks; return {hidden_dim: RunResult}.

    Steps:
        1. For each hidden size H, make the TrainConfig of `train_grid` with `hidden_dim=H`.
        2. Train it with `train(config, splits)` and keep the result under H.
    """
    ### BEGIN SOLUTION
    runs = {}
    for hidden_dim in hidden_dims:
        config = TrainConfig(
            num_shots=num_shots,
            num_classes=num_classes,
            hidden_dim=hidden_dim,
            code=str(code),
            **train_budget,
        )
        runs[hidden_dim] = train(config, splits)
    return runs
    ### END SOLUTION
''',
            ),
            code(
                """
HIDDEN_DIMS = [8, 128, 256]
hidden_runs = train_hidden_sizes(HIDDEN_DIMS, 1, 3, CODE, splits, TRAIN_BUDGET)
""",
                locked="run-hidden-sizes",
            ),
            tests(
                "test-hidden-size-runs",
                1,
                """
# Test: one 1-shot 3-way run per hidden size, each with its own hidden size.
assert list(hidden_runs) == HIDDEN_DIMS, (
    f"train_hidden_sizes returned runs for {list(hidden_runs)}, expected {HIDDEN_DIMS}"
)
for hidden_dim, run in hidden_runs.items():
    assert run.config.hidden_dim == hidden_dim, (
        f"the run stored under {hidden_dim} has hidden_dim={run.config.hidden_dim}"
    )
    assert (run.config.num_shots, run.config.num_classes) == (1, 3), "train 1-shot 3-way tasks"
### BEGIN HIDDEN TESTS
sizes = [sum(p.numel() for p in run.model.parameters()) for run in hidden_runs.values()]
assert sizes == sorted(set(sizes)), (
    f"the models have {sizes} parameters: a larger hidden_dim must give a larger model"
)
### END HIDDEN TESTS
print("hidden-size runs: OK")
""",
            ),
            code(
                """
fig = plot_learning_curve_comparison(
    {f"hidden {H}": run.history for H, run in hidden_runs.items()},
    path=figure_path("learning_curves_hidden.png"),
    title=f"Your MANN, 1-shot 3-way, three hidden sizes (budget: {BUDGET}), meta-val tasks",
    chance={f"hidden {H}": 1 / 3 for H in hidden_runs},
)
for H, run in hidden_runs.items():
    print(f"hidden {H}: meta-test accuracy {run.test}")
""",
                locked="plot-hidden-sizes",
            ),
            md(
                """
## 3. Questions

**Question 1 (2 points).** How do $K$ and $N$ change the difficulty of a task? Use your
curves: which family learns fastest and ends highest, and why?
"""
            ),
            answer(
                "answer-k-and-n",
                2,
                """
More classes (larger N) make a task harder: chance falls to 1/N, the query must be told apart
from more characters, and the sequence the LSTM must remember grows, so the 1-shot curves stay
longer on their initial plateau near chance, rise more slowly and end lower from N=2 to 3 to 4
(the 1-shot 4-way run stays lowest). More shots
(larger K) make it easier: each class is described by more drawings, so the learner sees more
of its variation; 2-shot 2-way learns at least as fast as 1-shot 2-way and ends as high or
higher, although the longer sequence costs the LSTM a little at the start.
""",
            ),
            md(
                """
**Question 2 (2 points).** A simpler black-box learner embeds every image with a feedforward
network and averages the embeddings of each class's support examples, then labels a query by
its nearest class average. Why might it beat the recurrent MANN on these tasks?
"""
            ),
            answer(
                "answer-feedforward-average",
                2,
                """
It builds in what the task is: the labels do not depend on the order of the support set, and
averaging per class is invariant to that order by construction, while the LSTM must learn
that invariance from data and compress all N*K examples into one recurrent state, which
forgets early examples and struggles with long sequences (more shots or ways). The feedforward
embedding treats every example the same way, shares its weights across examples and classes,
gets direct gradient for each support image, and compares the query with each class directly,
so it needs fewer tasks to train, is easier to optimise and generalises better to new
characters (it is a prototypical network).
""",
            ),
            md(
                """
**Question 3 (2 points).** GPT-3 can be seen as a black-box meta-learner: it solves a new task
from a few examples written in its prompt, with no gradient step. In that view, what are
$D_{tr}$ and $D_{ts}$ for GPT-3, and what plays the role of $f_\\theta$ and of meta-training?
"""
            ),
            answer(
                "answer-gpt3",
                2,
                """
D_tr is the set of input-output examples written in the prompt (the few "shots", e.g.
"English: cheese -> French: fromage" lines), and D_ts is the new input at the end of the
prompt whose output GPT-3 must produce (one query; its completion is the prediction). f_theta
is the transformer itself, reading D_tr and the query as one sequence, exactly like the MANN
reads the support set and then the query; its weights are not updated at test time, the
"learning" happens in its activations (in-context learning). Meta-training is the language
model pre-training on a huge corpus, which contains many implicit tasks, so next-token
prediction plays the role of training over tasks sampled from p(T).
""",
            ),
        ],
        "learning_curves",
    )


def demo_notebook():
    return notebook(
        [
            md(
                """
# TA demo: black-box meta-learning on Omniglot, end to end

The reference solution (`solutions/`) run through the kit: episodes, training with progress,
learning curves, the final meta-test accuracy with its 95% confidence interval, and correct
and wrong query predictions drawn as images. Run all cells. With `BUDGET = "small"` the demo
takes a few minutes on a laptop CPU; `"full"` trains towards the spec's accuracies (use a GPU).
Figures are saved as PNG in `figures/`.
"""
            ),
            code(
                BUDGET_PARAMETER
                + 'CODE = "solutions"  # the folder holding load_data.py and models.py ($KIT_CODE wins)\n'
                + "K, N = 1, 2  # the task family of the demo: 1-shot 2-way learns within the small budget\n"
            ),
            code(
                setup(
                    "CODE = code_folder(CODE)\n" + PRINT_CODE + TRAINING_BUDGET,
                    "import numpy as np",
                    "import torch",
                    "from data import load_splits",
                    "from kit.episodes import sample_tasks, task_loader",
                    "from kit.plots import plot_learning_curves, plot_predictions, plot_task, plot_tasks",
                    "from kit.submission import load_submission",
                    "from kit.train import TrainConfig, evaluate, train",
                ),
            ),
            md(
                """
## Data

Omniglot: 1623 handwritten characters from 50 alphabets, 20 drawings each, resized to 28x28
with ink 1.0. The characters are split into meta-train, meta-val and meta-test: a task at
meta-test time uses characters the learner has never seen.
"""
            ),
            code(
                """
splits = load_splits()  # {"train", "val", "test"} -> Split, images float32 [C, 20, 784]
for name, split in splits.items():
    print(f"meta-{name}: {len(split.names)} characters, images {split.images.shape}")
submission = load_submission(CODE)
"""
            ),
            md(
                """
## Episodes

`DataGenerator._sample` draws one task: $N$ characters, $K$ support drawings of each in class
order, and one query drawing of each in a shuffled order. The learner sees the support labels,
never the query labels.
"""
            ),
            code(
                """
generator = submission.load_data.DataGenerator(splits["train"].images, N, K, seed=0)
task_images, task_labels = generator._sample()  # [K+1, N, 784], [K+1, N, N]
print("one task:", task_images.shape, task_labels.shape)
fig = plot_task(task_images, task_labels, path=figure_path("demo_task.png"))
"""
            ),
            code(
                """
batch_images, batch_labels = next(iter(task_loader(generator, batch_size=16, seed=0)))
print("a batch:", tuple(batch_images.shape), tuple(batch_labels.shape))
fig = plot_tasks(batch_images, batch_labels, count=3, path=figure_path("demo_tasks.png"))
"""
            ),
            md(
                """
## Training

One training step is ordinary supervised learning on a batch of tasks: the MANN reads each
task's labelled support set and its unlabelled query set as one sequence, and the loss is the
cross-entropy of its query predictions. Every `eval_every` steps the trainer measures query
accuracy on meta-val tasks (characters never trained on).
"""
            ),
            code(
                """
def report(row):
    print(
        f"step {row['step']:>5}: meta-val accuracy {100 * row['val_accuracy']:5.1f}% "
        f"+/- {100 * row['val_ci95']:.1f}, loss {row['val_loss']:.3f}"
    )


config = TrainConfig(num_shots=K, num_classes=N, code=str(CODE), **TRAIN_BUDGET)
result = train(config, splits, on_eval=report)
"""
            ),
            code(
                """
label = f"K={K}, N={N}"
fig = plot_learning_curves(
    {label: result.history},
    path=figure_path("demo_learning_curve.png"),
    title=f"Reference MANN, {N}-way {K}-shot (budget: {BUDGET})",
    chance={label: 1 / N},
)
"""
            ),
            md(
                """
## Meta-test accuracy

Query accuracy on tasks built from the meta-test characters, averaged over tasks, with the
half-width of its 95% confidence interval (1.96 standard errors of the mean).
"""
            ),
            code(
                """
print(f"meta-test accuracy: {result.test}; chance is {100 / N:.0f}%")
print(f"{config.steps} steps, {result.train_seconds:.0f} s of training")
"""
            ),
            md(
                """
The same evaluation (`kit.train.evaluate`, the same seeded tasks for every model) on each
split's characters: the gap between meta-train and meta-test characters is the
meta-generalisation gap.
"""
            ),
            code(
                """
device = next(result.model.parameters()).device
for split in ("train", "val", "test"):
    evaluation = evaluate(
        result.model, splits[split].images, N, K, num_tasks=config.test_tasks, device=device
    )
    print(f"meta-{split} characters: {evaluation}")
"""
            ),
            md(
                """
## What the learner gets right and wrong

Meta-test tasks again: for each example, the query drawing and the first support drawing of
each class, the true class framed green and a wrong prediction framed red. Wrong predictions
are often characters that look alike.
"""
            ),
            code(
                """
rng = np.random.default_rng(0)
test_batch = sample_tasks(splits["test"].images, N, K, batch_size=64, rng=rng)
test_images, test_labels = (torch.from_numpy(array) for array in test_batch)
model = result.model.eval()
with torch.no_grad():
    preds = model(test_images.to(device), test_labels.to(device)).cpu()  # [B, K+1, N, N]
fig = plot_predictions(
    test_images, test_labels, preds, count=4, path=figure_path("demo_predictions.png")
)
"""
            ),
        ],
        "demo",
    )


NOTEBOOKS = {
    HERE / ASSIGNMENT / "episodes.ipynb": episodes_notebook,
    HERE / ASSIGNMENT / "learning_curves.ipynb": learning_curves_notebook,
    HERE / "demo.ipynb": demo_notebook,
}


def rendered() -> dict[Path, str]:
    """Path -> the exact text of each notebook file."""
    return {path: nbformat.writes(build()) + "\n" for path, build in NOTEBOOKS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python notebooks/build.py",
        description="Write the kit's notebooks (nbgrader sources and TA demo) from this file.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a notebook differs from this file (default: off)",
    )
    args = parser.parse_args(argv)
    texts = rendered()
    if args.check:
        stale = [
            path for path, text in texts.items() if not path.is_file() or path.read_text() != text
        ]
        for path in stale:
            print(
                f"error: {path.relative_to(HERE.parent)} is stale: run python notebooks/build.py",
                file=sys.stderr,
            )
        if not stale:
            print("notebooks are up to date with notebooks/build.py")
        return 1 if stale else 0
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(HERE.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
