"""Lake et al.'s one-shot classification challenge, read straight from `all_runs.zip`.

Letters: R runs (20), N = 20 classes per run, 784 = 28 x 28 pixels.

Lake, Salakhutdinov and Tenenbaum (2015) test one-shot learning with 20 official runs. Each run
holds 20 training drawings (`training/classNN.png`, one per character, all characters from one
alphabet of the evaluation set) and 20 test drawings (`test/itemNN.png`, one further drawing of
each character, by other people), and `class_labels.txt` pairs each test drawing with its
training drawing. A test drawing is classified among the run's 20 training drawings; the score
is the error rate over all 400 test drawings (people 4.5%, Bayesian Program Learning 3.3%,
Koch et al.'s Siamese convnet 8.0%).

A run is exactly one 20-way 1-shot task of the kit: the training drawings are the support row
(class n = `classNN`), the test drawings the query row with their true classes as its labels,
used only to score. Drawings are processed by `data.process_png`, as the training data is.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from data import LAKE_RUNS, OmniglotDataError, acquire_archive, process_png, verify_archive
from kit.train import query_accuracy

RUNS = 20
WAYS = 20


@dataclass
class LakeRuns:
    """The 20 runs as kit tasks: images `[R, 2, 20, 784]` and one-hot labels `[R, 2, 20, 20]`."""

    images: np.ndarray
    labels: np.ndarray


def load_runs(path: str | os.PathLike | None = None) -> LakeRuns:
    """Read the 20 runs from `all_runs.zip` (no extraction): `path` when given, else the copy
    that `data` acquires and verifies (`$OMNIGLOT_SOURCE/all_runs.zip`, or a download from the
    dataset's GitHub repository, cached in `cache/omniglot/raw/`).

    Raises:
        OmniglotDataError: the zip is missing, damaged or not Lake's `all_runs.zip`; the
            message says what to do.
    """
    if path is None:
        path = acquire_archive(LAKE_RUNS)
    else:
        verify_archive(path, LAKE_RUNS)
    path = Path(path)
    images = np.zeros((RUNS, 2, WAYS, 784), np.float32)
    labels = np.zeros((RUNS, 2, WAYS, WAYS), np.float32)
    with zipfile.ZipFile(path) as zf:
        for r in range(RUNS):
            run = f"run{r + 1:02d}"
            for n in range(WAYS):
                images[r, 0, n] = process_png(zf.read(f"{run}/training/class{n + 1:02d}.png"))
                labels[r, 0, n, n] = 1.0
            pairs = zf.read(f"{run}/class_labels.txt").decode().split()  # test, training, ...
            if len(pairs) != 2 * WAYS:
                raise OmniglotDataError(
                    f"{path}: {run}/class_labels.txt has {len(pairs)} entries, not 40"
                )
            for test, train in zip(pairs[::2], pairs[1::2]):
                q = int(Path(test).stem.removeprefix("item")) - 1  # test/item07.png -> 6
                n = int(Path(train).stem.removeprefix("class")) - 1  # training/class13.png -> 12
                images[r, 1, q] = process_png(zf.read(test))
                labels[r, 1, q, n] = 1.0
    if not (labels[:, 1].sum(axis=1) == 1).all():
        raise OmniglotDataError(
            f"{path}: a run's test drawings do not cover its 20 classes once each"
        )
    return LakeRuns(images, labels)


@torch.no_grad()
def error_rate(model: nn.Module, runs: LakeRuns, device: torch.device | str = "cpu") -> float:
    """The challenge's score: the fraction of the 400 test drawings classified wrongly."""
    was_training = model.training
    model.eval()
    try:
        images = torch.from_numpy(runs.images).to(device)  # [R, 2, 20, 784]
        labels = torch.from_numpy(runs.labels).to(device)  # [R, 2, 20, 20]
        accuracy = query_accuracy(model(images, labels), labels).mean().item()
    finally:
        model.train(was_training)
    return 1.0 - accuracy
