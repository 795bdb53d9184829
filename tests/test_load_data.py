"""Tests of the reference `DataGenerator` (solutions/load_data.py) against the homework contract.

Letters: T tasks, B tasks per batch, K shots, N classes, C characters, D = 20 drawings.

Most tests sample from identity images (see `episode_checks`), whose pixels name their own
(character, drawing), so each property is proved from what `_sample` returned; one test samples
the real meta-train split. Statistical tests state their false-failure rate (`ALPHA`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kit.submission import load_submission

from . import episode_checks as checks

SHAPES = [(1, 2), (2, 3), (3, 5), (5, 4), (1, 20)]  # (K, N); the contract asks K >= 2, N >= 3
TASKS_PER_SHAPE = 300
NUM_CHARACTERS = 40


@pytest.fixture(scope="module")
def DataGenerator() -> type:
    return load_submission("solutions").load_data.DataGenerator


@pytest.fixture(scope="module")
def identity() -> np.ndarray:
    """Identity images `[40, 20, 784]`."""
    return checks.identity_images(NUM_CHARACTERS)


@pytest.fixture(scope="module", params=SHAPES, ids=[f"K{k}N{n}" for k, n in SHAPES])
def tasks(request, DataGenerator, identity) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(K, N, images [T, K+1, N, 784], labels [T, K+1, N, N]) for one (K, N)."""
    num_shots, num_classes = request.param
    generator = DataGenerator(identity, num_classes, num_shots, seed=1)
    return (num_shots, num_classes, *checks.stack_samples(generator._sample, TASKS_PER_SHAPE))


@pytest.mark.parametrize(("num_shots", "num_classes"), SHAPES)
def test_sample_returns_float32_arrays_of_the_documented_shapes(
    DataGenerator,
    identity,
    num_shots,
    num_classes,
):
    """Does `_sample()` return images [K+1, N, 784] and labels [K+1, N, N], both float32?"""
    images, labels = DataGenerator(identity, num_classes, num_shots, seed=0)._sample()
    assert isinstance(images, np.ndarray) and isinstance(labels, np.ndarray)
    assert images.shape == (num_shots + 1, num_classes, 784)
    assert labels.shape == (num_shots + 1, num_classes, num_classes)
    assert images.dtype == np.float32 and labels.dtype == np.float32


@pytest.mark.parametrize(("num_shots", "num_classes"), SHAPES)
def test_dataloader_batches_have_the_documented_shapes(
    DataGenerator,
    identity,
    num_shots,
    num_classes,
):
    """Does a DataLoader stack tasks into [B, K+1, N, 784] and [B, K+1, N, N] float32?"""
    generator = DataGenerator(identity, num_classes, num_shots, seed=0)
    loader = torch.utils.data.DataLoader(generator, batch_size=6)
    images, labels = next(iter(loader))
    assert images.shape == (6, num_shots + 1, num_classes, 784)
    assert labels.shape == (6, num_shots + 1, num_classes, num_classes)
    assert images.dtype == torch.float32 and labels.dtype == torch.float32
    checks.assert_columns_hold_one_character(images.numpy())
    checks.assert_query_labels_match_images(images.numpy(), labels.numpy())


def test_every_column_holds_one_character(tasks):
    """Are all K+1 drawings of a column, support and query, drawings of the same character?"""
    checks.assert_columns_hold_one_character(tasks[2])


def test_a_task_has_n_distinct_characters(tasks):
    """Are the N classes of a task N different characters?"""
    checks.assert_columns_are_distinct_characters(tasks[2], tasks[1])


def test_drawings_within_a_class_are_distinct(tasks):
    """Are the K+1 drawings of each class sampled without replacement?"""
    checks.assert_drawings_distinct_within_class(tasks[2])


def test_the_query_drawing_is_never_a_support_drawing(tasks):
    """Is each query image a further drawing, never one of its class's support drawings?"""
    checks.assert_query_drawing_not_in_support(tasks[2], tasks[3])


def test_labels_are_one_hot(tasks):
    checks.assert_labels_one_hot(tasks[3])


def test_support_row_k_column_n_is_labelled_e_n(tasks):
    """Do the support rows keep the fixed class order, label e_n in column n?"""
    checks.assert_support_labels_in_class_order(tasks[3])


def test_query_labels_match_the_query_images(tasks):
    """Is every query image labelled with the class of the support column of its character?"""
    checks.assert_query_labels_match_images(tasks[2], tasks[3])


def test_query_order_is_a_uniformly_random_permutation(DataGenerator, identity):
    """Is the query row shuffled, each of the N! orders equally likely?

    3-way tasks: 6 orders, T = 3000 tasks, 500 expected per order. An unshuffled query row
    (the identity order every time) or a rotation-only shuffle gives a statistic in the
    thousands against a threshold of about 60; a correct sampler fails with probability
    <= ALPHA = 1e-9. Each position is also checked on its own: [N, N] counts of
    (query column, class), 1000 expected each.
    """
    generator = DataGenerator(identity, 3, 2, seed=2)
    _, labels = checks.stack_samples(generator._sample, 3000)
    order = checks.query_permutations(labels)  # [T, N]
    counts = checks.permutation_counts(order)
    assert counts[0] < len(order), "the query row is never shuffled: apply one permutation"
    statistic, threshold = checks.chi_square_fit(counts, np.full(6, 1 / 6))
    assert statistic < threshold, f"query orders are not uniform: counts {counts.tolist()}"
    by_position = np.stack([np.bincount(order[:, j], minlength=3) for j in range(3)])  # [N, N]
    for position, row in enumerate(by_position):
        statistic, threshold = checks.chi_square_fit(row, np.full(3, 1 / 3))
        assert statistic < threshold, f"query column {position} favours a class: {row.tolist()}"


def test_every_character_and_every_drawing_is_reachable(DataGenerator, identity):
    """Over enough tasks, does every character appear, and every drawing as support and query?

    5-way 1-shot from 40 characters: P(a given character is missed by 600 tasks) = (35/40)^600
    < 1e-34; P(a drawing is never the query of 3000 columns) = (19/20)^3000 < 1e-66.
    """
    generator = DataGenerator(identity, 5, 1, seed=3)
    images, _ = checks.stack_samples(generator._sample, 600)
    characters, drawings = checks.decode(images)
    missing = sorted(set(range(NUM_CHARACTERS)) - set(characters.ravel().tolist()))
    assert not missing, f"characters never drawn: {missing} (off-by-one in the range of C?)"
    for row, name in ((0, "support"), (1, "query")):
        unseen = sorted(set(range(20)) - set(drawings[:, row].ravel().tolist()))
        assert not unseen, f"drawings never used as {name}: {unseen}"


def test_characters_and_drawings_are_drawn_uniformly(DataGenerator, identity):
    """Is every character, and every drawing id, equally likely (chi-square, ALPHA = 1e-9)?

    3-way 2-shot from 40 characters, T = 2000 tasks: 150 expected per character, 600 per
    drawing id as support and 300 as query. The first two classes' query drawings must also
    be independent: equal ids in 1 task of D = 20.
    """
    generator = DataGenerator(identity, 3, 2, seed=4)
    images, labels = checks.stack_samples(generator._sample, 2000)
    found = checks.histograms(images, labels, NUM_CHARACTERS)
    expected = {
        "characters": np.full(NUM_CHARACTERS, 1 / NUM_CHARACTERS),
        "support_drawings": np.full(20, 1 / 20),
        "query_drawings": np.full(20, 1 / 20),
        "same_query_drawing": np.array([1 / 20, 19 / 20]),
    }
    for name, probabilities in expected.items():
        statistic, threshold = checks.chi_square_fit(found[name], probabilities)
        assert statistic < threshold, f"{name} are not uniform: {found[name].tolist()}"


def test_the_same_seed_gives_the_same_tasks(DataGenerator, identity):
    first = checks.stack_samples(DataGenerator(identity, 4, 2, seed=11)._sample, 20)
    second = checks.stack_samples(DataGenerator(identity, 4, 2, seed=11)._sample, 20)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_different_seeds_give_different_tasks(DataGenerator, identity):
    """P(20 tasks agree by chance) is astronomically small: 4 of 40 characters alone."""
    first, _ = checks.stack_samples(DataGenerator(identity, 4, 2, seed=11)._sample, 20)
    second, _ = checks.stack_samples(DataGenerator(identity, 4, 2, seed=12)._sample, 20)
    assert not np.array_equal(first, second), "the seed is ignored: seed self.rng with it"


def test_reseeding_self_rng_reproduces_the_tasks(DataGenerator, identity):
    """Is `self.rng` the only source of randomness, so that replacing it replays the tasks?"""
    generator = DataGenerator(identity, 3, 2, seed=None)
    generator.rng = np.random.default_rng(5)
    first = checks.stack_samples(generator._sample, 10)
    generator.rng = np.random.default_rng(5)
    second = checks.stack_samples(generator._sample, 10)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])


def test_global_numpy_and_torch_seeds_do_not_change_the_tasks(DataGenerator, identity):
    """Would a sampler that used np.random or torch's RNG instead of self.rng be caught?"""
    streams = []
    for global_seed in (0, 1):
        np.random.seed(global_seed)
        torch.manual_seed(global_seed)
        streams.append(checks.stack_samples(DataGenerator(identity, 3, 2, seed=6)._sample, 10))
    np.testing.assert_array_equal(streams[0][0], streams[1][0])
    np.testing.assert_array_equal(streams[0][1], streams[1][1])


def test_sampling_leaves_the_images_unchanged(DataGenerator, identity):
    """Does `_sample` leave the split's array alone, and return arrays that do not alias it?"""
    images = identity.copy()
    generator = DataGenerator(images, 5, 3, seed=7)
    for _ in range(50):
        task_images, task_labels = generator._sample()
        task_images[:] = -1.0  # a caller writing into a task must not corrupt the split
        task_labels[:] = -1.0
    np.testing.assert_array_equal(images, identity)


def test_real_meta_train_tasks_are_drawings_of_real_characters(DataGenerator, splits):
    """On the real meta-train split, is every task made of real drawings with the right labels?

    Each sampled image is looked up in the split (by a random projection, then compared
    exactly): its (character, drawing) must satisfy the same properties as identity images.
    """
    train_images = splits["train"].images  # [1100, 20, 784]
    num_drawings = train_images.shape[1]
    generator = DataGenerator(train_images, 5, 2, seed=8)
    images, labels = checks.stack_samples(generator._sample, 20)  # [T, 3, 5, 784]
    assert images.dtype == np.float32 and images.min() >= 0.0 and images.max() <= 1.0

    flat = train_images.reshape(-1, 784)
    projection = np.random.default_rng(0).standard_normal(784)
    keys = flat.astype(np.float64) @ projection  # [C*D]
    queries = images.reshape(-1, 784).astype(np.float64) @ projection  # [T*(K+1)*N]
    found = np.abs(keys[None, :] - queries[:, None]).argmin(1).reshape(images.shape[:-1])
    np.testing.assert_array_equal(flat[found], images, "a sampled image is not in the split")
    encoded = np.zeros_like(images)
    encoded[..., 0] = (found // num_drawings) / checks.SCALE
    encoded[..., 1] = (found % num_drawings) / checks.SCALE
    checks.assert_columns_hold_one_character(encoded)
    checks.assert_columns_are_distinct_characters(encoded, 5)
    checks.assert_drawings_distinct_within_class(encoded)
    checks.assert_query_labels_match_images(encoded, labels)
    checks.assert_support_labels_in_class_order(labels)
