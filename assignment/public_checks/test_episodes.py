"""Episode checks: `DataGenerator._sample` on images that encode their own identity.

Letters: T sampled tasks, K shots, N classes, C characters, D drawings, 784 pixels.

Every property is proven on every one of `NUM_TASKS` tasks by decoding each image's
(character, drawing) identity (`autograder.identity`), never guessed from pixels. K = 2 and
N = 3, so that row and column order both matter.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from autograder.feedback import BUGS, fail
from autograder.identity import (
    EPISODE_CLASSES,
    EPISODE_SHOTS,
    EPISODE_TASKS,
    NUM_CHARACTERS,
    SHUFFLE_TOLERANCE,
    decode,
    identity_images,
)

K, N = EPISODE_SHOTS, EPISODE_CLASSES  # 2 and 3
NUM_TASKS = EPISODE_TASKS  # 2000

pytestmark = pytest.mark.visibility("visible")


def sampled(child, seeds: list[int], count: int, num_shots: int = K, num_classes: int = N):
    """`count` tasks from a DataGenerator per seed, drawn in turn, checked for shape and dtype.

    Returns images `[G, count, K+1, N, 784]` and labels `[G, count, K+1, N, N]`.
    """
    __tracebackhide__ = True
    table = identity_images()
    reply = child.call(
        "sample",
        "DataGenerator._sample",
        arrays={"images": table},
        N=num_classes,
        K=num_shots,
        seeds=seeds,
        count=count,
    )
    images, labels = reply.arrays["images"], reply.arrays["labels"]
    expected_images = (len(seeds), count, num_shots + 1, num_classes, 784)
    expected_labels = (len(seeds), count, num_shots + 1, num_classes, num_classes)
    types = reply.result["types"]
    if types[:1] != ["tuple"] or types[1:] != ["ndarray", "ndarray"]:
        fail(BUGS["sample_shape"], f"_sample returned {types[0]} of {', '.join(types[1:])}")
    if images.shape != expected_images or labels.shape != expected_labels:
        fail(
            BUGS["sample_shape"],
            f"K={num_shots}, N={num_classes}: images {images.shape[2:]}, labels "
            f"{labels.shape[2:]}, expected {expected_images[2:]} and {expected_labels[2:]}",
        )
    if images.dtype != np.float32 or labels.dtype != np.float32:
        fail(BUGS["sample_shape"], f"dtypes {images.dtype} and {labels.dtype}, not float32")
    return images, labels


class Episodes:
    """`NUM_TASKS` decoded tasks: characters and drawings `[T, K+1, N]`, label classes."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels  # [T, K+1, N, 784], [T, K+1, N, N]
        self.character, self.drawing = decode(images, identity_images())  # [T, K+1, N]
        self.support_class = self.character[:, 0]  # [T, N], the character of column n
        # Which support column each query image belongs to, -1 if none: [T, N].
        query = self.character[:, K]
        match = query[:, :, None] == self.support_class[:, None, :]  # [T, N (query), N (class)]
        self.query_class = np.where(match.any(-1), match.argmax(-1), -1)

    def valid_query_rows(self) -> np.ndarray:
        """`[T]` bool: the query row holds one drawing of each of the N classes."""
        ordered = np.sort(self.query_class, axis=1)
        return (ordered == np.arange(N)).all(axis=1)


@pytest.fixture(scope="module")
def episodes(child, grading) -> Episodes:
    images, labels = sampled(child, [grading.seed], NUM_TASKS)
    return Episodes(images[0], labels[0])


def first_bad(mask: np.ndarray) -> str:
    bad = np.flatnonzero(~mask)
    return f"{bad.size} of {mask.size} tasks, e.g. task {bad[0]}" if bad.size else ""


@pytest.mark.points(2)
@pytest.mark.parametrize(("num_shots", "num_classes"), [(2, 3), (3, 4)], ids=["K2-N3", "K3-N4"])
def test_sample_returns_float32_arrays_of_the_documented_shapes(child, num_shots, num_classes):
    """Does _sample return images [K+1, N, 784] and labels [K+1, N, N], both float32?"""
    sampled(child, [0], 3, num_shots, num_classes)


@pytest.mark.points(1)
def test_a_dataloader_stacks_tasks_into_batches_of_the_documented_shapes(child):
    """Does DataLoader(generator, batch_size=B) give [B, K+1, N, 784] and [B, K+1, N, N]?"""
    B = 4
    reply = child.call(
        "batch",
        "a DataLoader over DataGenerator",
        arrays={"images": identity_images()},
        N=N,
        K=K,
        B=B,
    )
    images, labels = reply.arrays["images"], reply.arrays["labels"]
    if reply.result["length"] != 2:
        fail(BUGS["batch_shape"], f"a batch of {reply.result['length']} items, not 2")
    if images.shape != (B, K + 1, N, 784) or labels.shape != (B, K + 1, N, N):
        fail(BUGS["batch_shape"], f"shapes {images.shape} and {labels.shape}")
    if images.dtype != np.float32 or labels.dtype != np.float32:
        fail(BUGS["batch_shape"], f"dtypes {images.dtype} and {labels.dtype}")


@pytest.mark.points(1)
def test_every_image_is_one_of_the_given_drawings(episodes):
    """Is every sampled image exactly one drawing of the images passed in?"""
    exact = (episodes.character >= 0).all(axis=(1, 2))
    if not exact.all():
        fail(BUGS["not_a_drawing"], first_bad(exact))


@pytest.mark.points(2)
def test_every_support_column_holds_one_character(episodes):
    """Are support rows 0..K-1 of column n all drawings of the same character?"""
    support = episodes.character[:, :K]  # [T, K, N]
    same = ((support == support[:, :1]) & (support >= 0)).all(axis=(1, 2))
    if not same.all():
        fail(BUGS["column_mixes_characters"], first_bad(same))


@pytest.mark.points(2)
def test_the_n_classes_are_distinct_characters(episodes):
    """Are the N classes of every task N different characters?"""
    ordered = np.sort(episodes.support_class, axis=1)
    distinct = (ordered[:, 1:] != ordered[:, :-1]).all(axis=1)
    if not distinct.all():
        fail(BUGS["classes_repeat"], first_bad(distinct))


@pytest.mark.points(2)
def test_the_query_row_holds_one_drawing_of_each_class(episodes):
    """Does row K hold exactly one drawing of each of the task's N characters?"""
    valid = episodes.valid_query_rows()
    if not valid.all():
        fail(BUGS["query_not_one_per_class"], first_bad(valid))


@pytest.mark.points(2)
def test_query_drawings_are_never_support_drawings(episodes):
    """Is each query image a drawing that is not among its class's support drawings?"""
    valid = episodes.valid_query_rows()
    tasks = np.arange(len(valid))[:, None]
    query_drawing = np.empty_like(episodes.query_class)
    query_drawing[tasks, np.where(valid[:, None], episodes.query_class, 0)] = episodes.drawing[:, K]
    support_drawing = episodes.drawing[:, :K]  # [T, K, N]
    disjoint = (support_drawing != query_drawing[:, None, :]).all(axis=(1, 2)) | ~valid
    if not disjoint.all():
        fail(BUGS["support_query_overlap"], first_bad(disjoint))


@pytest.mark.points(1)
def test_support_drawings_within_a_class_are_distinct(episodes):
    """Are the K support drawings of every class K different drawings?"""
    ordered = np.sort(episodes.drawing[:, :K], axis=1)  # [T, K, N]
    distinct = (ordered[:, 1:] != ordered[:, :-1]).all(axis=(1, 2))
    if not distinct.all():
        fail(BUGS["drawings_repeat"], first_bad(distinct))


@pytest.mark.points(2)
def test_support_rows_keep_the_fixed_class_order(episodes):
    """Is the label of row k < K, column n exactly e_n?"""
    expected = np.broadcast_to(np.eye(N, dtype=np.float32), (K, N, N))
    fixed = (episodes.labels[:, :K] == expected).all(axis=(1, 2, 3))
    if not fixed.all():
        fail(BUGS["support_labels_order"], first_bad(fixed))


@pytest.mark.points(2)
def test_query_labels_match_query_images(episodes):
    """Is each query label the one-hot class of the query image it sits next to?"""
    labels = episodes.labels[:, K]  # [T, N, N]
    one_hot = ((labels == 0) | (labels == 1)).all(axis=(1, 2)) & (labels.sum(-1) == 1).all(-1)
    match = one_hot & (labels.argmax(-1) == episodes.query_class).all(axis=1)
    if not match.all():
        fail(BUGS["query_labels_wrong"], first_bad(match))


@pytest.mark.points(3)
def test_the_query_row_is_shuffled_uniformly(episodes):
    """Is every order of the query row equally likely (false-failure rate < 1e-6, see
    `autograder.identity.SHUFFLE_FALSE_FAILURE`)?"""
    valid = episodes.valid_query_rows()
    if not valid.all():
        fail(BUGS["query_not_one_per_class"], "cannot test shuffling: " + first_bad(valid))
    position_of_class = np.argsort(episodes.query_class, axis=1)  # [T, N]
    cells = [
        ((position_of_class[:, n] == p).mean(), 1 / N, f"class {n} at query position {p}")
        for n in range(N)
        for p in range(N)
    ]
    for permutation in itertools.permutations(range(N)):
        frequency = (episodes.query_class == np.array(permutation)).all(axis=1).mean()
        cells.append((frequency, 1 / math.factorial(N), f"query order {permutation}"))
    worst = max(cells, key=lambda cell: abs(cell[0] - cell[1]))
    if abs(worst[0] - worst[1]) > SHUFFLE_TOLERANCE:
        fail(
            BUGS["query_not_shuffled"],
            f"{worst[2]} in {100 * worst[0]:.1f}% of {NUM_TASKS} tasks, expected "
            f"{100 * worst[1]:.1f}%",
        )


@pytest.mark.points(1)
def test_every_character_is_reachable(episodes):
    """Is every one of the C characters drawn as a class in some task?"""
    seen = np.unique(episodes.support_class[episodes.support_class >= 0])
    missing = sorted(set(range(NUM_CHARACTERS)) - set(seen.tolist()))
    if missing:
        fail(
            BUGS["unreachable_character"],
            f"characters {missing} of 0..{NUM_CHARACTERS - 1} never drawn in {NUM_TASKS} tasks",
        )


@pytest.mark.points(2)
def test_the_same_seed_gives_the_same_tasks(child, grading):
    """Do two generators with one seed, drawn from in turn, give identical tasks?"""
    images, labels = sampled(child, [grading.seed + 7, grading.seed + 7], 20)
    same = (images[0] == images[1]).all(axis=(1, 2, 3)) & (labels[0] == labels[1]).all(
        axis=(1, 2, 3)
    )
    if not same.all():
        fail(BUGS["rng_not_self_rng"], f"{first_bad(same)} differ between the two generators")


@pytest.mark.points(1)
def test_different_seeds_give_different_tasks(child, grading):
    """Do generators with different seeds give different tasks?"""
    images, _ = sampled(child, [grading.seed + 7, grading.seed + 8], 20)
    if (images[0] == images[1]).all():
        fail(BUGS["seed_ignored"], "seeds 7 and 8 gave the same 20 tasks")
