"""The kit's notebooks, one module per notebook, rendered to the `.ipynb` files they own.

- `episodes`, `learning_curves`: the nbgrader source of the student assignment "blackbox",
  `notebooks/blackbox/*.ipynb` (solutions, hidden tests, points in the cell metadata), from
  which nbgrader makes the student notebooks (`publish.course`).
- `demo`: the TA's demo, `notebooks/demo.ipynb`.

Edit the cells in these modules, never the `.ipynb` files: `python -m publish --check` fails
when the two drift apart. The cells only call the kit (`kit.train`, `kit.episodes`,
`kit.plots`, `data`), so that there is one sampler, one trainer and one evaluator.
"""

from __future__ import annotations

import nbformat

from publish.notebooks import demo, episodes, learning_curves

ASSIGNMENT_ID = "blackbox"  # the nbgrader assignment; its source is notebooks/blackbox/
SOURCE_FOLDER = f"notebooks/{ASSIGNMENT_ID}"


def render(notebook: nbformat.NotebookNode) -> bytes:
    """The exact bytes of a notebook file."""
    return (nbformat.writes(notebook) + "\n").encode()


def sources(level: str) -> dict[str, bytes]:
    """Repository path -> bytes of each notebook, student notebooks at hint level `level`."""
    return {
        f"{SOURCE_FOLDER}/episodes.ipynb": render(episodes.build(level)),
        f"{SOURCE_FOLDER}/learning_curves.ipynb": render(learning_curves.build(level)),
        "notebooks/demo.ipynb": render(demo.build()),
    }
