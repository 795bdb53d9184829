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

from autograder.feedback import BUGS, fail, not_judged
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


TYPE_CHECK = "sample returns float32 arrays of the documented shapes"
# Each property's check title, and the properties it presupposes, roots first. A check is
# judged on the tasks where all it presupposes holds; when none is left, it says which check to
# fix first instead of suggesting a fix of its own. Where the support columns mix characters,
# the properties that do not depend on the layout (distinct classes, drawings, no overlap) are
# judged on the task's images as a set.
TITLES = {
    "drawing": "every image is one of the given drawings",
    "column": "every support column holds one character",
    "classes": "the N classes are distinct characters",
    "query_row": "the query row holds one drawing of each class",
    "drawings": "support drawings within a class are distinct",
    "overlap": "query drawings are never support drawings",
    "support_labels": "support rows keep the fixed class order",
    "query_labels": "query labels match query images",
    "shuffled": "the query row is shuffled uniformly",
    "reachable": "every character is reachable",
}
PRESUPPOSES = {
    "drawing": (),
    "column": ("drawing",),
    "classes": ("drawing",),
    "query_row": ("drawing", "column", "classes"),
    "drawings": ("drawing", "classes"),
    "overlap": ("drawing", "classes", "drawings"),
    "support_labels": (),
    "query_labels": ("drawing", "column", "classes", "query_row", "support_labels"),
    "shuffled": ("drawing", "column", "classes", "query_row"),
    "reachable": ("drawing",),
}


def sampled(child, seeds: list[int], count: int, num_shots: int = K, num_classes: int = N):
    """`count` tasks from a DataGenerator per seed, drawn in turn, checked for shape only.

    Returns float32 copies of what `_sample` returned (tensors, float64 or int arrays and lists
    are converted by the child: the container is the type check's business alone), images
    `[G, count, K+1, N, 784]` and labels `[G, count, K+1, N, N]`, and the child's reply.
    """
    __tracebackhide__ = True
    reply = child.call(
        "sample",
        "DataGenerator._sample",
        arrays={"images": identity_images()},
        N=num_classes,
        K=num_shots,
        seeds=seeds,
        count=count,
    )
    shape = shape_problem(reply, len(seeds), count, num_shots, num_classes)
    if shape:
        fail(not_judged(TYPE_CHECK), shape)
    return reply.arrays["images"], reply.arrays["labels"], reply


def shape_problem(reply, groups: int, count: int, num_shots: int, num_classes: int) -> str:
    """What is wrong with the shapes of `_sample`'s returns, or "" when they are right."""
    if reply.result["why"]:
        return reply.result["why"]
    images, labels = reply.arrays["images"], reply.arrays["labels"]
    expected_images = (groups, count, num_shots + 1, num_classes, 784)
    expected_labels = (groups, count, num_shots + 1, num_classes, num_classes)
    if images.shape != expected_images or labels.shape != expected_labels:
        return (
            f"K={num_shots}, N={num_classes}: images {images.shape[2:]}, labels "
            f"{labels.shape[2:]}, expected {expected_images[2:]} and {expected_labels[2:]}"
        )
    return ""


def type_problem(reply) -> tuple[str, str] | None:
    """(bug key, observed) when `_sample` did not return a tuple of two float32 arrays."""
    types, dtypes = reply.result["types"], reply.result["dtypes"]
    if types[:1] != ["tuple"] or len(types) != 3:
        return "sample_shape", f"_sample returned {types[0]} of {', '.join(types[1:])}"
    if "Tensor" in types[1:]:
        return "sample_tensors", f"_sample returned a tuple of {', '.join(types[1:])}"
    if types[1:] != ["ndarray", "ndarray"]:
        return "sample_shape", f"_sample returned a tuple of {', '.join(types[1:])}"
    if dtypes != ["float32", "float32"]:
        return "sample_dtype", f"dtypes {dtypes[0]} and {dtypes[1]}, not float32"
    return None


class Episodes:
    """`NUM_TASKS` decoded tasks: characters and drawings `[T, K+1, N]`, label classes, and
    which tasks every per-task property holds on (`holds`), each computed once."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.images, self.labels = images, labels  # [T, K+1, N, 784], [T, K+1, N, N]
        self.character, self.drawing = decode(images, identity_images())  # [T, K+1, N]
        self.support_class = self.character[:, 0]  # [T, N], the character of column n
        # Which support column each query image belongs to, -1 if none: [T, N].
        query = self.character[:, K]
        match = query[:, :, None] == self.support_class[:, None, :]  # [T, N (query), N (class)]
        self.query_class = np.where(match.any(-1), match.argmax(-1), -1)
        self._holds: dict[str, np.ndarray] = {}

    def valid_query_rows(self) -> np.ndarray:
        """`[T]` bool: the query row holds one drawing of each of the N classes."""
        ordered = np.sort(self.query_class, axis=1)
        return (ordered == np.arange(N)).all(axis=1)

    def holds(self, key: str) -> np.ndarray:
        """`[T]` bool: the tasks on which per-task property `key` holds."""
        if key not in self._holds:
            self._holds[key] = PER_TASK[key](self)
        return self._holds[key]

    def scope(self, key: str) -> np.ndarray:
        """`[T]` bool: the tasks on which every property that `key` presupposes holds."""
        scope = np.ones(len(self.character), dtype=bool)
        for root in PRESUPPOSES[key]:
            scope &= self.holds(root)
        return scope

    def labels_follow_images(self) -> bool:
        """Do two images of a task share a label exactly when they share a character (whatever
        the rows and columns they sit in)?"""
        characters = self.character.reshape(len(self.character), -1)  # [T, (K+1)*N]
        classes = self.labels.argmax(-1).reshape(len(characters), -1)  # [T, (K+1)*N]
        same_character = characters[:, :, None] == characters[:, None, :]
        same_label = classes[:, :, None] == classes[:, None, :]
        return bool((same_character == same_label).all())

    def support_rows_in_order(self) -> bool:
        expected = np.broadcast_to(np.eye(N, dtype=np.float32), (K, N, N))
        return bool((self.labels[:, :K] == expected).all())


def judge(episodes: Episodes, key: str) -> None:
    """Fail the current check when property `key` does not hold on the tasks it can be judged
    on (those where its presupposed properties hold); name the root cause when there are none.
    """
    __tracebackhide__ = True
    scope = episodes.scope(key)
    if not scope.any():
        root = next(r for r in PRESUPPOSES[key] if not episodes.holds(r).all())
        fail(not_judged(TITLES[root]), f"'{TITLES[root]}' fails on every task")
    if key in PER_TASK:
        ok = episodes.holds(key) | ~scope
        if ok.all():
            return
        bad = np.flatnonzero(~ok)
        observed = f"{bad.size} of {int(scope.sum())} tasks, e.g. task {bad[0]}"
        fail(BUGS[NAMED.get(key, lambda e: DEFAULT_BUG[key])(episodes)], observed)
    found = DISTRIBUTION[key](episodes, scope)
    if found is not None:
        fail(BUGS[found[0]], found[1])


@pytest.fixture(scope="module")
def episodes(child, grading) -> Episodes:
    images, labels, _ = sampled(child, [grading.seed], NUM_TASKS)
    return Episodes(images[0], labels[0])


def first_bad(mask: np.ndarray) -> str:
    bad = np.flatnonzero(~mask)
    return f"{bad.size} of {mask.size} tasks, e.g. task {bad[0]}" if bad.size else ""


# -- the properties: which tasks each holds on, and which bug its failure names ------------------


def every_image_is_a_drawing(e: Episodes) -> np.ndarray:
    return (e.character >= 0).all(axis=(1, 2))


def columns_hold_one_character(e: Episodes) -> np.ndarray:
    support = e.character[:, :K]  # [T, K, N]
    return ((support == support[:, :1]) & (support >= 0)).all(axis=(1, 2))


def as_a_set(e: Episodes) -> tuple[np.ndarray, np.ndarray]:
    """Layout-free views of every task's (K+1)*N images: `[T]` bool "N distinct characters, K+1
    images each" and `[T]` bool "no image repeats"."""
    ordered = np.sort(e.character.reshape(len(e.character), -1), axis=1)  # [T, (K+1)*N]
    groups = ordered.reshape(len(ordered), N, K + 1)
    classes = (groups == groups[:, :, :1]).all(axis=(1, 2)) & (
        groups[:, 1:, 0] > groups[:, :-1, 0]
    ).all(axis=1)
    ids = np.sort((e.character * NUM_CHARACTERS * 100 + e.drawing).reshape(len(ordered), -1), 1)
    return classes, (ids[:, 1:] != ids[:, :-1]).all(axis=1)


def classes_are_distinct(e: Episodes) -> np.ndarray:
    ordered = np.sort(e.support_class, axis=1)
    distinct = (ordered[:, 1:] != ordered[:, :-1]).all(axis=1)
    return np.where(e.holds("column"), distinct, as_a_set(e)[0])


def support_drawings_are_distinct(e: Episodes) -> np.ndarray:
    ordered = np.sort(e.drawing[:, :K], axis=1)  # [T, K, N]
    distinct = (ordered[:, 1:] != ordered[:, :-1]).all(axis=(1, 2))
    return np.where(e.holds("column"), distinct, as_a_set(e)[1])


def query_is_not_a_support_drawing(e: Episodes) -> np.ndarray:
    valid = e.valid_query_rows()
    tasks = np.arange(len(valid))[:, None]
    query_drawing = np.empty_like(e.query_class)
    query_drawing[tasks, np.where(valid[:, None], e.query_class, 0)] = e.drawing[:, K]
    support_drawing = e.drawing[:, :K]  # [T, K, N]
    disjoint = (support_drawing != query_drawing[:, None, :]).all(axis=(1, 2)) | ~valid
    return np.where(e.holds("column"), disjoint, as_a_set(e)[1])


def support_labels_in_order(e: Episodes) -> np.ndarray:
    expected = np.broadcast_to(np.eye(N, dtype=np.float32), (K, N, N))
    return (e.labels[:, :K] == expected).all(axis=(1, 2, 3))


def query_labels_match(e: Episodes) -> np.ndarray:
    labels = e.labels[:, K]  # [T, N, N]
    one_hot = ((labels == 0) | (labels == 1)).all(axis=(1, 2)) & (labels.sum(-1) == 1).all(-1)
    return one_hot & (labels.argmax(-1) == e.query_class).all(axis=1)


def rows_shuffled_or(bug: str):
    """The named bug "every row shuffled" when the support rows are out of order but every
    image still carries its own character's label, else `bug`."""
    return lambda e: (
        "support_rows_shuffled"
        if not e.support_rows_in_order() and e.labels_follow_images()
        else bug
    )


def labels_by_position_or_wrong(e: Episodes) -> str:
    by_position = (e.labels[:, K] == np.eye(N, dtype=np.float32)).all()
    return "labels_by_position" if by_position else "query_labels_wrong"


def query_row_shuffled(e: Episodes, scope: np.ndarray):
    """Frequencies of the query orders over the judged tasks: within the tolerance of uniform,
    which widens as sqrt(NUM_TASKS / judged) to keep the false-failure rate of the full test."""
    query_class = e.query_class[scope]
    position_of_class = np.argsort(query_class, axis=1)  # [T', N]
    cells = [
        ((position_of_class[:, n] == p).mean(), 1 / N, f"class {n} at query position {p}")
        for n in range(N)
        for p in range(N)
    ]
    for permutation in itertools.permutations(range(N)):
        frequency = (query_class == np.array(permutation)).all(axis=1).mean()
        cells.append((frequency, 1 / math.factorial(N), f"query order {permutation}"))
    worst = max(cells, key=lambda cell: abs(cell[0] - cell[1]))
    if abs(worst[0] - worst[1]) <= SHUFFLE_TOLERANCE * math.sqrt(NUM_TASKS / len(query_class)):
        return None
    observed = (
        f"{worst[2]} in {100 * worst[0]:.1f}% of {len(query_class)} tasks, expected "
        f"{100 * worst[1]:.1f}%"
    )
    under_own_class = (query_class == np.arange(N)).all()
    if under_own_class and not (e.labels[scope, K] == np.eye(N, dtype=np.float32)).all():
        return "one_permutation_every_row", observed
    return "query_not_shuffled", observed


def every_character_reachable(e: Episodes, scope: np.ndarray):
    seen = np.unique(e.support_class[scope])
    missing = sorted(set(range(NUM_CHARACTERS)) - set(seen.tolist()))
    if not missing:
        return None
    return "unreachable_character", (
        f"characters {missing} of 0..{NUM_CHARACTERS - 1} never drawn in {int(scope.sum())} tasks"
    )


PER_TASK = {
    "drawing": every_image_is_a_drawing,
    "column": columns_hold_one_character,
    "classes": classes_are_distinct,
    "query_row": Episodes.valid_query_rows,
    "drawings": support_drawings_are_distinct,
    "overlap": query_is_not_a_support_drawing,
    "support_labels": support_labels_in_order,
    "query_labels": query_labels_match,
}
DEFAULT_BUG = {
    "drawing": "not_a_drawing",
    "column": "column_mixes_characters",
    "classes": "classes_repeat",
    "query_row": "query_not_one_per_class",
    "drawings": "drawings_repeat",
    "overlap": "support_query_overlap",
    "support_labels": "support_labels_order",
    "query_labels": "query_labels_wrong",
}
NAMED = {  # properties whose failure can name a more specific bug
    "column": rows_shuffled_or("column_mixes_characters"),
    "support_labels": rows_shuffled_or("support_labels_order"),
    "query_labels": labels_by_position_or_wrong,
}
DISTRIBUTION = {"shuffled": query_row_shuffled, "reachable": every_character_reachable}


# -- the checks -------------------------------------------------------------------------------


@pytest.mark.points(2)
@pytest.mark.parametrize(("num_shots", "num_classes"), [(2, 3), (3, 4)], ids=["K2-N3", "K3-N4"])
def test_sample_returns_float32_arrays_of_the_documented_shapes(child, num_shots, num_classes):
    """Does _sample return images [K+1, N, 784] and labels [K+1, N, N], both float32?"""
    reply = child.call(
        "sample",
        "DataGenerator._sample",
        arrays={"images": identity_images()},
        N=num_classes,
        K=num_shots,
        seeds=[0],
        count=3,
    )
    shape = shape_problem(reply, 1, 3, num_shots, num_classes)
    problem = type_problem(reply)
    if problem and problem[0] == "sample_shape" or shape and not problem:
        fail(BUGS["sample_shape"], problem[1] if problem else shape)
    if problem:
        fail(BUGS[problem[0]], problem[1] + (f"; and the shapes: {shape}" if shape else ""))


@pytest.mark.points(1)
def test_a_dataloader_stacks_tasks_into_batches_of_the_documented_shapes(child):
    """Does DataLoader(generator, batch_size=B) give [B, K+1, N, 784] and [B, K+1, N, N]?
    (Their dtype is the type check's alone.)"""
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
        observed = f"a batch of {reply.result['length']} items, not 2"
    elif images.shape != (B, K + 1, N, 784) or labels.shape != (B, K + 1, N, N):
        observed = f"shapes {images.shape} and {labels.shape}"
    else:
        return
    _, _, sample = sampled(child, [0], 1)  # right shapes: is the container the root cause?
    problem = type_problem(sample)
    fail(not_judged(TYPE_CHECK) if problem else BUGS["batch_shape"], observed)


@pytest.mark.points(1)
def test_every_image_is_one_of_the_given_drawings(episodes):
    """Is every sampled image exactly one drawing of the images passed in?"""
    judge(episodes, "drawing")


@pytest.mark.points(2)
def test_every_support_column_holds_one_character(episodes):
    """Are support rows 0..K-1 of column n all drawings of the same character?"""
    judge(episodes, "column")


@pytest.mark.points(2)
def test_the_n_classes_are_distinct_characters(episodes):
    """Are the N classes of every task N different characters?"""
    judge(episodes, "classes")


@pytest.mark.points(2)
def test_the_query_row_holds_one_drawing_of_each_class(episodes):
    """Does row K hold exactly one drawing of each of the task's N characters?"""
    judge(episodes, "query_row")


@pytest.mark.points(2)
def test_query_drawings_are_never_support_drawings(episodes):
    """Is each query image a drawing that is not among its class's support drawings?"""
    judge(episodes, "overlap")


@pytest.mark.points(1)
def test_support_drawings_within_a_class_are_distinct(episodes):
    """Are the K support drawings of every class K different drawings?"""
    judge(episodes, "drawings")


@pytest.mark.points(2)
def test_support_rows_keep_the_fixed_class_order(episodes):
    """Is the label of row k < K, column n exactly e_n?"""
    judge(episodes, "support_labels")


@pytest.mark.points(2)
def test_query_labels_match_query_images(episodes):
    """Is each query label the one-hot class of the query image it sits next to?"""
    judge(episodes, "query_labels")


@pytest.mark.points(3)
def test_the_query_row_is_shuffled_uniformly(episodes):
    """Is every order of the query row equally likely (false-failure rate < 1e-6, see
    `autograder.identity.SHUFFLE_FALSE_FAILURE`)?"""
    judge(episodes, "shuffled")


@pytest.mark.points(1)
def test_every_character_is_reachable(episodes):
    """Is every one of the C characters drawn as a class in some task?"""
    judge(episodes, "reachable")


@pytest.mark.points(2)
def test_the_same_seed_gives_the_same_tasks(child, grading):
    """Do two generators with one seed, drawn from in turn, give identical tasks?"""
    images, labels, _ = sampled(child, [grading.seed + 7, grading.seed + 7], 20)
    same = (images[0] == images[1]).all(axis=(1, 2, 3)) & (labels[0] == labels[1]).all(
        axis=(1, 2, 3)
    )
    if not same.all():
        fail(BUGS["rng_not_self_rng"], f"{first_bad(same)} differ between the two generators")


@pytest.mark.points(1)
def test_different_seeds_give_different_tasks(child, grading):
    """Do generators with different seeds give different tasks?"""
    images, _, _ = sampled(child, [grading.seed + 7, grading.seed + 8], 20)
    if (images[0] == images[1]).all():
        fail(BUGS["seed_ignored"], "seeds 7 and 8 gave the same 20 tasks")
