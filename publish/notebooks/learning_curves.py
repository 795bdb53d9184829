"""Part 2 of the assignment, `learning_curves.ipynb`: train the student's MANN on the (K, N)
grid and with three hidden sizes, plot the learning curves, answer three written questions."""

from __future__ import annotations

import nbformat

from publish.cells import (
    BUDGET_PARAMETER,
    HOW_TO_WORK,
    PRINT_CODE,
    STUDENT_CODE,
    TRAINING_BUDGET,
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
                pick(
                    level,
                    steps="""
## 1. The $(K, N)$ grid

Complete `train_grid`. `kit.train.TrainConfig` describes a run (see `python -m kit.train
--help` for every field) and `kit.train.train(config, splits)` trains it with a progress bar
and returns a `RunResult`: `.history` (one row per meta-val evaluation: `step`, `val_loss`,
`val_accuracy`, ...), `.test` (the final meta-test evaluation) and `.model`.
""",
                    outline="""
## 1. The $(K, N)$ grid

Complete `train_grid`. `kit.train.TrainConfig` describes a run (see `python -m kit.train
--help` for every field) and `kit.train.train` trains one on the splits with a progress bar
and returns a `RunResult`: `.history` (one row per meta-val evaluation: `step`, `val_loss`,
`val_accuracy`, ...), `.test` (the final meta-test evaluation) and `.model`.
""",
                )
            ),
            solution(
                "train-grid",
                '''
def train_grid(grid, code, splits, train_budget):
    """Train one MANN per (K, N) of `grid` on your code; return {(K, N): RunResult}.

    Outline:
        - One run per (K, N) of `grid`, trained for the budget `train_budget` on your code:
          your load_data.py feeds the training, your models.py learns.
        - The result maps each (K, N) to its RunResult, in the order of `grid`.

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
                level,
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

    Outline:
        - One run per hidden size H, set up as the runs of `train_grid` but with H hidden
          units.
        - The result maps each H to its RunResult, in the order of `hidden_dims`.

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
                level,
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
            question(
                "answer-k-and-n",
                2,
                "Question 1",
                """
How do $K$ and $N$ change the difficulty of a task? Use your
curves: which family learns fastest and ends highest, and why?
""",
                """
More classes (larger N) make a task harder: chance falls to 1/N, the query must be told apart
from more characters, and the sequence the LSTM must remember grows, so the 1-shot curves stay
longer on their initial plateau near chance, rise more slowly and end lower from N=2 to 3 to 4
(the 1-shot 4-way run stays lowest). More shots
(larger K) make it easier: each class is described by more drawings, so the learner sees more
of its variation; 2-shot 2-way learns at least as fast as 1-shot 2-way and ends as high or
higher, although the longer sequence costs the LSTM a little at the start.
""",
                intro="## 3. Questions",
            ),
            question(
                "answer-feedforward-average",
                2,
                "Question 2",
                """
A simpler black-box learner embeds every image with a feedforward
network and averages the embeddings of each class's support examples, then labels a query by
its nearest class average. Why might it beat the recurrent MANN on these tasks?
""",
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
            question(
                "answer-gpt3",
                2,
                "Question 3",
                """
GPT-3 can be seen as a black-box meta-learner: it solves a new task
from a few examples written in its prompt, with no gradient step. In that view, what are
$D_{tr}$ and $D_{ts}$ for GPT-3, and what plays the role of $f_\\theta$ and of meta-training?
""",
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
