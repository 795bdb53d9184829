"""The TA's demo, `notebooks/demo.ipynb`: the reference solution end to end (episodes,
training with progress, learning curve, meta-test accuracy, predictions drawn as images)."""

from __future__ import annotations

import nbformat

from publish.cells import BUDGET_PARAMETER, PRINT_CODE, TRAINING_BUDGET, code, md, notebook, setup


def build() -> nbformat.NotebookNode:
    """The demo notebook (the same at every hint level: it runs the reference)."""
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
                    "from kit.episodes import sample_tasks",
                    "from kit.loader import task_loader",
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
