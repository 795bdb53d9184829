"""Shared checks for task samplers: identity-encoding images, task properties, statistics.

Letters: T tasks, K shots, N classes, C characters, D drawings per character, 784 pixels.

`identity_images(C, D)` builds a fake split whose every image encodes its own (character,
drawing): pixel 0 holds `c / SCALE` and pixel 1 holds `d / SCALE`, exact in float32. `decode`
reads them back from a sampled task, so a test can *prove* what a sampler did instead of
guessing from pixels. The `assert_*` helpers check one property each over a stack of tasks
`[T, K+1, N, 784]` and are shared by the tests of `DataGenerator._sample` and of
`kit.episodes.sample_tasks`.

Statistics: the distribution tests use Pearson's chi-square statistic and the Laurent-Massart
bound on the chi-square tail, P(X >= d + 2 sqrt(d x) + 2 x) <= exp(-x) for d degrees of freedom
(Laurent & Massart 2000, Lemma 1). With x = ln(1 / ALPHA) a correct sampler fails a test with
probability at most about ALPHA = 1e-9 (asymptotically, as Pearson's statistic tends to the
chi-square law; every expected count used here is at least 50, so the approximation is good).
Where the counted draws are without replacement (N distinct characters, K+1 distinct
drawings), the counts vary less than multinomial ones and the test is conservative.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

SCALE = 4096.0  # pixels c / 4096 and d / 4096 are exact in float32 for c, d < 2**24
ALPHA = 1e-9  # false-failure rate of each statistical test (see the module docstring)


def identity_images(num_characters: int, num_drawings: int = 20) -> np.ndarray:
    """float32 `[C, D, 784]`: pixel 0 is c / SCALE, pixel 1 is d / SCALE, the rest a pattern
    that differs between images (so that no sampler can get away with returning zeros)."""
    images = np.zeros((num_characters, num_drawings, 784), dtype=np.float32)
    images[:, :, 0] = np.arange(num_characters)[:, None] / SCALE
    images[:, :, 1] = np.arange(num_drawings)[None, :] / SCALE
    images[:, :, 2:] = np.linspace(0.0, 1.0, 782, dtype=np.float32)
    images[:, :, 2] = np.arange(num_characters)[:, None] * num_drawings + np.arange(num_drawings)
    images[:, :, 2] /= num_characters * num_drawings
    return images


def decode(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Characters and drawings `[..., K+1, N]` (int) of identity images `[..., K+1, N, 784]`."""
    images = np.asarray(images)
    characters = np.rint(images[..., 0] * SCALE).astype(np.int64)
    drawings = np.rint(images[..., 1] * SCALE).astype(np.int64)
    return characters, drawings


def stack_samples(sample, num_tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """`num_tasks` calls of `sample()` stacked: `[T, K+1, N, 784]` and `[T, K+1, N, N]`."""
    tasks = [sample() for _ in range(num_tasks)]
    return np.stack([t[0] for t in tasks]), np.stack([t[1] for t in tasks])


def query_permutations(labels: np.ndarray) -> np.ndarray:
    """`[T, N]`: the class of each query column, read from the one-hot labels `[T, K+1, N, N]`."""
    return labels[:, -1].argmax(-1)


# --- one property each, over a stack of T tasks ------------------------------------------


def assert_columns_hold_one_character(images: np.ndarray) -> None:
    """Support rows 0..K-1: column n is one character (the query row is shuffled; see
    `assert_query_labels_match_images`)."""
    __tracebackhide__ = True
    characters, _ = decode(images[:, :-1])  # [T, K, N]
    mixed = np.flatnonzero((characters != characters[:, :1]).any(axis=(1, 2)))
    assert mixed.size == 0, (
        f"{mixed.size} of {len(images)} tasks mix characters within a support column (first: "
        f"task {mixed[0] if mixed.size else None}, characters by row "
        f"{characters[mixed[:1]].tolist()}); column n must hold drawings of ONE class n"
    )


def assert_columns_are_distinct_characters(images: np.ndarray, num_classes: int) -> None:
    __tracebackhide__ = True
    characters, _ = decode(images)
    distinct = np.array([len(set(row)) for row in characters[:, 0]])
    assert (distinct == num_classes).all(), (
        f"tasks with repeated classes: {np.count_nonzero(distinct != num_classes)} of "
        f"{len(images)} (first support row: {characters[distinct != num_classes][0, 0]}); draw "
        "the N characters without replacement (rng.choice(C, N, replace=False))"
    )


def assert_drawings_distinct_within_class(images: np.ndarray) -> None:
    __tracebackhide__ = True
    characters, drawings = decode(images)
    ids = characters * 100_000 + drawings  # [T, K+1, N], one id per image
    sorted_ids = np.sort(ids, axis=1)
    repeats = (sorted_ids[:, 1:] == sorted_ids[:, :-1]).any(axis=(1, 2))
    assert not repeats.any(), (
        f"{np.count_nonzero(repeats)} of {len(images)} tasks repeat a drawing within a class; "
        "draw each class's K+1 drawings without replacement"
    )


def assert_query_drawing_not_in_support(images: np.ndarray, labels: np.ndarray) -> None:
    __tracebackhide__ = True
    _, drawings = decode(images)
    num_shots = images.shape[1] - 1
    order = query_permutations(labels)  # [T, N]: query column j is class order[j]
    # support_of_query[t, k, j]: support drawing k of the class shown in query column j.
    support_of_query = np.take_along_axis(drawings[:, :num_shots], order[:, None, :], axis=2)
    overlap = (support_of_query == drawings[:, None, num_shots]).any(axis=(1, 2))
    assert not overlap.any(), (
        f"{np.count_nonzero(overlap)} of {len(images)} tasks reuse a support drawing as the "
        "query; the query must be a further drawing of its class"
    )


def assert_labels_one_hot(labels: np.ndarray) -> None:
    __tracebackhide__ = True
    binary = np.isin(labels, (0.0, 1.0)).all()
    one_per_row = (labels.sum(-1) == 1.0).all()
    assert binary and one_per_row, "labels must be one-hot: 0.0 and 1.0, exactly one 1 per row"


def assert_support_labels_in_class_order(labels: np.ndarray) -> None:
    __tracebackhide__ = True
    num_shots, num_classes = labels.shape[1] - 1, labels.shape[2]
    expected = np.broadcast_to(
        np.eye(num_classes), (len(labels), num_shots, num_classes, num_classes)
    )
    wrong = np.flatnonzero((labels[:, :num_shots] != expected).any(axis=(1, 2, 3)))
    assert wrong.size == 0, (
        f"{wrong.size} of {len(labels)} tasks break the fixed support order (row k, column n "
        f"must be labelled e_n); first: {labels[wrong[0], :num_shots].argmax(-1).tolist()}"
    )


def assert_query_labels_match_images(images: np.ndarray, labels: np.ndarray) -> None:
    __tracebackhide__ = True
    characters, _ = decode(images)
    order = query_permutations(labels)  # [T, N]
    expected = np.take_along_axis(characters[:, 0], order, axis=1)  # support class order[j]
    wrong = np.flatnonzero((characters[:, -1] != expected).any(axis=1))
    assert wrong.size == 0, (
        f"{wrong.size} of {len(images)} tasks label a query image with another class's label; "
        "shuffle images[K] and labels[K] with the SAME permutation"
    )


# --- statistics --------------------------------------------------------------------------


def chi_square_threshold(degrees_of_freedom: int, alpha: float = ALPHA) -> float:
    """x such that P(chi2_d >= x) <= alpha, by the Laurent-Massart bound."""
    x = math.log(1.0 / alpha)
    return degrees_of_freedom + 2.0 * math.sqrt(degrees_of_freedom * x) + 2.0 * x


def chi_square_fit(counts: np.ndarray, probabilities: np.ndarray) -> tuple[float, float]:
    """Pearson's statistic of `counts` against `probabilities`, and its rejection threshold."""
    counts = np.asarray(counts, dtype=np.float64).ravel()
    expected = counts.sum() * np.asarray(probabilities, dtype=np.float64).ravel()
    assert expected.min() >= 50, f"too few draws for the chi-square test: {expected.min():.0f}"
    statistic = float(((counts - expected) ** 2 / expected).sum())
    return statistic, chi_square_threshold(len(counts) - 1)


def chi_square_homogeneity(counts_a: np.ndarray, counts_b: np.ndarray) -> tuple[float, float]:
    """Pearson's statistic that two histograms share one distribution, and its threshold."""
    table = np.stack([np.ravel(counts_a), np.ravel(counts_b)]).astype(np.float64)  # [2, k]
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    assert expected.min() >= 50, f"too few draws for the chi-square test: {expected.min():.0f}"
    statistic = float(((table - expected) ** 2 / expected).sum())
    return statistic, chi_square_threshold(table.shape[1] - 1)


def permutation_counts(order: np.ndarray) -> np.ndarray:
    """`[N!]` how often each permutation of N appears among the rows of `order [T, N]`."""
    num_classes = order.shape[1]
    index = {perm: i for i, perm in enumerate(itertools.permutations(range(num_classes)))}
    counts = np.zeros(len(index), dtype=np.int64)
    for row in map(tuple, order.tolist()):
        counts[index[row]] += 1
    return counts


def histograms(
    images: np.ndarray, labels: np.ndarray, num_characters: int, num_drawings: int = 20
) -> dict[str, np.ndarray]:
    """Histograms that together describe a task distribution, from identity images.

    characters: `[C]` how often each character is drawn; support_drawings and query_drawings:
    `[D]` how often each drawing id is a support / the query example; permutations: `[N!]` the
    query orders; same_query_drawing: `[2]` tasks whose first two classes share / do not share
    their query drawing id (1 in D for independent classes).
    """
    characters, drawings = decode(images)
    same = drawings[:, -1, 0] == drawings[:, -1, 1]
    return {
        "characters": np.bincount(characters[:, 0].ravel(), minlength=num_characters),
        "support_drawings": np.bincount(drawings[:, :-1].ravel(), minlength=num_drawings),
        "query_drawings": np.bincount(drawings[:, -1].ravel(), minlength=num_drawings),
        "permutations": permutation_counts(query_permutations(labels)),
        "same_query_drawing": np.array([same.sum(), (~same).sum()]),
    }
