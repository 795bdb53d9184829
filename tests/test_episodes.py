"""Tests of `kit.episodes`: the batched sampler, its rejection sampler, and the DataLoader plumbing.

Letters: T tasks, B tasks per batch, K shots, N classes, C characters, D = 20 drawings.

`sample_tasks` promises the per-task properties of `DataGenerator._sample` AND the same
distribution; the second is tested by comparing histograms of many tasks from both with a
chi-square homogeneity test (false-failure rate ALPHA = 1e-9 each, see `episode_checks`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kit.episodes import _distinct_integers, sample_tasks
from kit.loader import reseed_worker, task_loader
from kit.submission import load_submission

from . import episode_checks as checks

SHAPES = [(1, 2), (2, 3), (3, 5), (5, 4), (1, 20)]  # (K, N)
NUM_CHARACTERS = 40


@pytest.fixture(scope="module")
def DataGenerator() -> type:
    return load_submission("solutions").load_data.DataGenerator


@pytest.fixture(scope="module")
def identity() -> np.ndarray:
    return checks.identity_images(NUM_CHARACTERS)


@pytest.fixture(scope="module", params=SHAPES, ids=[f"K{k}N{n}" for k, n in SHAPES])
def batch(request, identity) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(K, N, images [T, K+1, N, 784], labels [T, K+1, N, N]) from one `sample_tasks` call."""
    num_shots, num_classes = request.param
    images, labels = sample_tasks(identity, num_classes, num_shots, 300, np.random.default_rng(1))
    return num_shots, num_classes, images, labels


def test_batches_have_the_documented_shapes_and_dtypes(batch):
    num_shots, num_classes, images, labels = batch
    assert images.shape == (300, num_shots + 1, num_classes, 784)
    assert labels.shape == (300, num_shots + 1, num_classes, num_classes)
    assert images.dtype == np.float32 and labels.dtype == np.float32


def test_every_support_column_holds_one_character(batch):
    checks.assert_columns_hold_one_character(batch[2])


def test_a_task_has_n_distinct_characters(batch):
    checks.assert_columns_are_distinct_characters(batch[2], batch[1])


def test_drawings_within_a_class_are_distinct(batch):
    checks.assert_drawings_distinct_within_class(batch[2])


def test_the_query_drawing_is_never_a_support_drawing(batch):
    checks.assert_query_drawing_not_in_support(batch[2], batch[3])


def test_labels_are_one_hot(batch):
    checks.assert_labels_one_hot(batch[3])


def test_support_row_k_column_n_is_labelled_e_n(batch):
    checks.assert_support_labels_in_class_order(batch[3])


def test_query_labels_match_the_query_images(batch):
    checks.assert_query_labels_match_images(batch[2], batch[3])


def test_sampling_leaves_the_images_unchanged_and_unaliased(identity):
    images = identity.copy()
    task_images, _ = sample_tasks(images, 5, 2, 64, np.random.default_rng(0))
    task_images[:] = -1.0
    np.testing.assert_array_equal(images, identity)


@pytest.mark.parametrize(("num_shots", "num_classes"), [(1, 3), (2, 3), (1, 2)])
def test_sample_tasks_has_the_distribution_of_sample(
    DataGenerator,
    identity,
    num_shots,
    num_classes,
):
    """Do characters, drawings and query orders follow the same law in both samplers?

    T = 3000 tasks from each, 40 characters: >= 150 expected per character, >= 300 per drawing
    id, 500 per query order (N = 3). Each histogram is compared with a chi-square homogeneity
    test at ALPHA = 1e-9, so a correct pair fails with probability < 5e-9 in all.
    """
    generator = DataGenerator(identity, num_classes, num_shots, seed=21)
    reference = checks.histograms(*checks.stack_samples(generator._sample, 3000), NUM_CHARACTERS)
    batched = checks.histograms(
        *sample_tasks(identity, num_classes, num_shots, 3000, np.random.default_rng(22)),
        NUM_CHARACTERS,
    )
    for name in reference:
        statistic, threshold = checks.chi_square_homogeneity(reference[name], batched[name])
        assert statistic < threshold, (
            f"{name} differ: _sample {reference[name].tolist()}, "
            f"sample_tasks {batched[name].tolist()}"
        )


def test_the_homogeneity_test_detects_an_unshuffled_query_row(DataGenerator, identity):
    """Has the distribution test the power to see a real bug (query order never shuffled)?"""
    generator = DataGenerator(identity, 3, 1, seed=23)
    _, labels = checks.stack_samples(generator._sample, 3000)
    _, unshuffled = sample_tasks(identity, 3, 1, 3000, np.random.default_rng(24))
    unshuffled[:, -1] = np.eye(3)  # what a sampler that forgets the permutation returns
    statistic, threshold = checks.chi_square_homogeneity(
        checks.permutation_counts(checks.query_permutations(labels)),
        checks.permutation_counts(checks.query_permutations(unshuffled)),
    )
    assert statistic > threshold


def test_the_same_rng_seed_gives_the_same_batch_and_another_seed_another(identity):
    first = sample_tasks(identity, 3, 2, 16, np.random.default_rng(5))
    second = sample_tasks(identity, 3, 2, 16, np.random.default_rng(5))
    third = sample_tasks(identity, 3, 2, 16, np.random.default_rng(6))
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], third[0])


def test_with_groups_each_task_takes_its_characters_from_one_usable_group(identity):
    """Lake's challenge trains on tasks within one alphabet: `groups` = the alphabets."""
    groups = [np.arange(0, 10), np.arange(10, 13), np.arange(13, 40)]  # 10, 3 and 27 characters
    images, _ = sample_tasks(identity, 5, 1, 3000, np.random.default_rng(0), groups)
    checks.assert_columns_hold_one_character(images)
    checks.assert_columns_are_distinct_characters(images, 5)
    characters, _ = checks.decode(images[:, 0])  # [T, N] the support row's characters
    group_of = np.searchsorted([10, 13], characters, side="right")  # [T, N] 0, 1 or 2
    assert (group_of == group_of[:, :1]).all(), "a task mixes characters of two groups"
    counts = np.bincount(group_of[:, 0], minlength=3)
    assert counts[1] == 0, "the 3-character group cannot hold a 5-way task"
    statistic, threshold = checks.chi_square_fit(counts[[0, 2]], np.full(2, 1 / 2))
    assert statistic < threshold, f"the usable groups are not drawn uniformly: {counts}"
    assert set(np.unique(characters)) == set(range(10)) | set(range(13, 40))
    with pytest.raises(ValueError, match="no group has the N=30 characters"):
        sample_tasks(identity, 30, 1, 4, np.random.default_rng(0), groups)


def test_distinct_integers_fallback_is_distinct_and_uniform():
    """N close to C takes the permutation branch (N(N-1) > C): are rows distinct and uniform?

    C = 4, N = 3: 24 ordered triples, 12000 rows, 500 expected each (ALPHA = 1e-9).
    """
    rows = _distinct_integers(np.random.default_rng(0), 4, 12000, 3)  # [rows, N]
    assert rows.shape == (12000, 3) and rows.min() >= 0 and rows.max() < 4
    assert all(len(set(row)) == 3 for row in rows.tolist()), "a row repeats an integer"
    codes = rows[:, 0] * 16 + rows[:, 1] * 4 + rows[:, 2]
    triples = np.unique(codes)
    assert len(triples) == 24, f"only {len(triples)} of the 24 ordered triples appear"
    counts = np.array([np.count_nonzero(codes == code) for code in triples])
    statistic, threshold = checks.chi_square_fit(counts, np.full(24, 1 / 24))
    assert statistic < threshold, f"ordered triples are not uniform: {counts.tolist()}"


def test_distinct_integers_rejection_branch_is_distinct_and_uniform():
    """N(N-1) <= C takes the rejection branch: C = 12, N = 3, 1320 triples; by position."""
    rows = _distinct_integers(np.random.default_rng(1), 12, 12000, 3)
    assert all(len(set(row)) == 3 for row in rows.tolist()), "a row repeats an integer"
    for column in range(3):
        counts = np.bincount(rows[:, column], minlength=12)
        statistic, threshold = checks.chi_square_fit(counts, np.full(12, 1 / 12))
        assert statistic < threshold, f"column {column} is not uniform: {counts.tolist()}"


# --- task_loader and worker seeding -------------------------------------------------------


def task_ids(loader: torch.utils.data.DataLoader, num_batches: int) -> list[tuple]:
    """One hashable id per task (its characters and drawings), for `num_batches` batches."""
    ids = []
    for (images, _), _ in zip(loader, range(num_batches)):
        characters, drawings = checks.decode(images.numpy())  # [B, K+1, N]
        ids.extend(
            zip(
                map(tuple, characters.reshape(len(images), -1).tolist()),
                map(tuple, drawings.reshape(len(images), -1).tolist()),
            )
        )
    return ids


def duplicated(ids: list[tuple]) -> int:
    return len(ids) - len(set(ids))


@pytest.fixture(scope="module")
def worker_generator(DataGenerator, identity):
    """A 3-way 2-shot generator over identity images with 100 characters."""
    return DataGenerator(checks.identity_images(100), 3, 2, seed=0)


def test_task_loader_workers_yield_different_tasks(worker_generator):
    """With 2 workers, are all tasks different? (a repeat by chance: P < 1e-9 for 160 tasks)"""
    ids = task_ids(task_loader(worker_generator, 8, seed=0, num_workers=2), 20)
    assert len(ids) == 160
    assert duplicated(ids) == 0, "workers repeat each other's tasks: reseed each worker's rng"


def test_task_loader_with_the_same_seed_replays_the_same_stream(worker_generator):
    first = task_ids(task_loader(worker_generator, 8, seed=3, num_workers=2), 10)
    second = task_ids(task_loader(worker_generator, 8, seed=3, num_workers=2), 10)
    other = task_ids(task_loader(worker_generator, 8, seed=4, num_workers=2), 10)
    assert first == second, "the same seed gave different task streams"
    assert first != other, "a different seed gave the same task stream"


def test_without_reseed_worker_the_workers_would_duplicate_tasks(worker_generator):
    """Is the bug that `reseed_worker` prevents real, so the test above can catch it?

    A DataLoader copies the generator, `self.rng` included, into each worker: worker 0's batch
    i and worker 1's batch i are then identical.
    """
    plain = torch.utils.data.DataLoader(worker_generator, batch_size=8, num_workers=2)
    assert duplicated(task_ids(plain, 20)) == 80
    reseeded = torch.utils.data.DataLoader(
        worker_generator, batch_size=8, num_workers=2, worker_init_fn=reseed_worker
    )
    assert duplicated(task_ids(reseeded, 20)) == 0


def test_task_loader_without_workers_is_the_generators_own_stream(DataGenerator, identity):
    """num_workers=0: the batches are the generator's `_sample()` calls, in order."""
    loader = task_loader(DataGenerator(identity, 3, 1, seed=9), 4, seed=0)
    images, labels = next(iter(loader))
    expected = checks.stack_samples(DataGenerator(identity, 3, 1, seed=9)._sample, 4)
    np.testing.assert_array_equal(images.numpy(), expected[0])
    np.testing.assert_array_equal(labels.numpy(), expected[1])
