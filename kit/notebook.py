"""Settings shared by the notebooks: training budgets, the code folder, where figures go.

The notebooks read three environment variables, so that the tests and `nbgrader autograde`
can run them quickly and against chosen code without anyone editing a cell:

    KIT_NOTEBOOK_BUDGET   tiny | small | full: how long each training run is (default: small)
    KIT_CODE              the folder holding load_data.py and models.py
                          (default: the student notebooks' own folder, "."; the demo: solutions)
    KIT_FIGURES           the folder the figures are saved into, as PNG (default: figures)

The environment wins over a notebook's own settings (`BUDGET = "full"` in its parameters
cell, `CODE`), so that autograde runs a submitted notebook with the tiny budget whatever the
student set.
"""

from __future__ import annotations

import os
from pathlib import Path

from kit.submission import resolve_folder

# Keyword arguments of `kit.train.TrainConfig` for each budget.
BUDGETS: dict[str, dict[str, int]] = {
    # Tests and autograde: checks that every cell runs, in seconds per run; learns little.
    "tiny": {"steps": 20, "batch_size": 16, "eval_every": 10, "val_tasks": 50, "test_tasks": 50},
    # The default on a laptop CPU. Measured with solutions/: the learning-curves notebook used
    # about 8 CPU-minutes; 1-shot 2-way reached 78% on meta-test, 1-shot 3-way stayed at chance.
    "small": {
        "steps": 400,
        "batch_size": 64,
        "eval_every": 50,
        "val_tasks": 200,
        "test_tasks": 500,
    },
    # Towards the spec's reference accuracies (not measured for every (K, N) at this budget);
    # a GPU, or patience, recommended.
    "full": {
        "steps": 3000,
        "batch_size": 128,
        "eval_every": 100,
        "val_tasks": 500,
        "test_tasks": 1000,
    },
}


def budget(name: str = "small") -> tuple[str, dict[str, int]]:
    """`(name, TrainConfig keyword arguments)` for `$KIT_NOTEBOOK_BUDGET`, else for `name`."""
    name = os.environ.get("KIT_NOTEBOOK_BUDGET") or name
    if name not in BUDGETS:
        raise ValueError(
            f"unknown notebook budget {name!r} (from BUDGET or $KIT_NOTEBOOK_BUDGET): "
            f"use one of {', '.join(BUDGETS)}"
        )
    return name, dict(BUDGETS[name])


def code_folder(default: str = ".") -> Path:
    """The folder with the code to run: `$KIT_CODE`, else `default` (checked by
    `kit.submission.resolve_folder`, which names the missing file when there is one)."""
    return resolve_folder(os.environ.get("KIT_CODE") or default)


def figure_path(name: str) -> Path:
    """`<$KIT_FIGURES or figures>/<name>`, its folder created."""
    folder = Path(os.environ.get("KIT_FIGURES") or "figures")
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
