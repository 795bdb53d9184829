"""Model checks: `MANN.forward` and `MANN.loss_function`, behaviour seen from outside.

Letters: B tasks, K shots, N classes, 784 pixels. Tasks are random images with fixed labels
(support rows in class order, each task's query row in its own fixed order), so that these
checks ship to students without any sampler; the child builds a fresh, seeded MANN for
every call and returns its outputs as arrays; every comparison happens here.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.feedback import BUGS, fail

B = 4
SHAPES = [(1, 2), (2, 3)]  # (K, N)
SHAPE_IDS = ["K1-N2", "K2-N3"]
ATOL = 1e-5  # float32 LSTM outputs recomputed on identical inputs agree far closer than this

pytestmark = pytest.mark.visibility("visible")


def tasks(num_shots: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """B tasks of random images `[B, K+1, N, 784]` and one-hot labels `[B, K+1, N, N]`: support
    rows in class order, task b's query row rolled by b + 1 columns."""
    images = np.random.default_rng(seed).random((B, num_shots + 1, num_classes, 784), np.float32)
    classes = np.tile(np.arange(num_classes), (B, num_shots + 1, 1))  # [B, K+1, N]
    classes[:, -1] = [np.roll(np.arange(num_classes), b + 1) for b in range(B)]
    return images, np.eye(num_classes, dtype=np.float32)[classes]


def forward(
    child,
    grading,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    num_shots: int,
    num_classes: int,
    check_shape: bool = True,
):
    """Predictions of ONE fresh MANN on each (images, labels) pair, checked for shape.

    Returns a list of (preds, images after, labels after).
    """
    __tracebackhide__ = True
    arrays = {}
    for i, (images, labels) in enumerate(pairs):
        arrays[f"images{i}"], arrays[f"labels{i}"] = images, labels
    reply = child.call(
        "forward",
        "MANN.forward",
        arrays=arrays,
        N=num_classes,
        K=num_shots,
        seed=grading.seed,
        pairs=len(pairs),
    )
    out = []
    for i in range(len(pairs)):
        preds = reply.arrays[f"preds{i}"]
        expected = (B, num_shots + 1, num_classes, num_classes)
        if check_shape and preds.shape != expected:
            fail(BUGS["forward_shape"], f"K={num_shots}, N={num_classes}: {preds.shape}")
        if (
            check_shape
            and not np.issubdtype(preds.dtype, np.floating)
            or not np.isfinite(preds).all()
        ):
            fail(BUGS["forward_shape"], f"dtype {preds.dtype}, finite: {np.isfinite(preds).all()}")
        out.append((preds, reply.arrays[f"images{i}"], reply.arrays[f"labels{i}"]))
    return out


def largest_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.mark.points(2)
@pytest.mark.parametrize(("num_shots", "num_classes"), SHAPES, ids=SHAPE_IDS)
def test_forward_returns_logits_of_the_documented_shape(child, grading, num_shots, num_classes):
    """Does forward map [B, K+1, N, 784] and [B, K+1, N, N] to finite logits [B, K+1, N, N]?"""
    forward(child, grading, [tasks(num_shots, num_classes)], num_shots, num_classes)


@pytest.mark.points(3)
def test_predictions_ignore_the_query_labels(child, grading):
    """Are all predictions unchanged when the query row's labels are changed or zeroed?"""
    K, N = 2, 3
    images, labels = tasks(K, N)
    other = labels.copy()
    other[:, K] = labels[:, K, ::-1]  # every query label changed (N = 3: first and last swap)
    other[:, K, 1] = np.roll(labels[:, K, 1], 1, axis=-1)
    zeroed = labels.copy()
    zeroed[:, K] = 0
    (preds, _, _), (preds_other, _, _), (preds_zeroed, _, _) = forward(
        child, grading, [(images, labels), (images, other), (images, zeroed)], K, N
    )
    change = max(largest_change(preds, preds_other), largest_change(preds, preds_zeroed))
    if change > ATOL:
        fail(BUGS["label_leak"], f"predictions moved by up to {change:.3g}")


@pytest.mark.points(2)
def test_forward_leaves_its_inputs_unchanged(child, grading):
    """Are the images and labels tensors identical after forward to what was passed in?"""
    K, N = 2, 3
    images, labels = tasks(K, N)
    ((_, images_after, labels_after),) = forward(
        child, grading, [(images, labels)], K, N, check_shape=False
    )
    if not np.array_equal(labels_after, labels):
        rows = sorted({int(r) for r in np.argwhere(labels_after != labels)[:, 1]})
        fail(BUGS["inputs_modified"], f"labels changed in rows {rows}")
    if not np.array_equal(images_after, images):
        fail(BUGS["inputs_modified"], "the images tensor changed")


@pytest.mark.points(3)
def test_support_predictions_do_not_depend_on_the_query_row(child, grading):
    """Read in row order (support first, query last), can a support prediction see a query?"""
    K, N = 2, 3
    images, labels = tasks(K, N)
    replaced = images.copy()
    replaced[:, K] = np.random.default_rng(1).random(replaced[:, K].shape, dtype=np.float32)
    (preds, _, _), (preds_replaced, _, _) = forward(
        child, grading, [(images, labels), (replaced, labels)], K, N
    )
    change = largest_change(preds[:, :K], preds_replaced[:, :K])
    if change > ATOL:
        fail(BUGS["class_major"], f"support predictions moved by up to {change:.3g}")


# -- loss_function ------------------------------------------------------------------------------


def reference_loss(preds: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of the query row, in float64: the value the spec fixes."""
    logits = preds[:, -1].reshape(-1, preds.shape[-1]).astype(np.float64)  # [B*N, N]
    targets = labels[:, -1].reshape(-1, labels.shape[-1]).argmax(-1)  # [B*N]
    top = logits.max(-1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(-1)) + top[:, 0]
    return float((log_z - logits[np.arange(len(targets)), targets]).mean())


def loss_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    K, N = 2, 3
    _, labels = tasks(K, N, seed)
    preds = np.random.default_rng(seed).normal(0, 2, size=labels.shape).astype(np.float32)
    return preds, labels


def loss(child, grading, preds: np.ndarray, labels: np.ndarray):
    return child.call(
        "loss",
        "MANN.loss_function",
        arrays={"preds": preds, "labels": labels},
        N=labels.shape[-1],
        K=labels.shape[1] - 1,
        seed=grading.seed,
    )


def loss_value(reply) -> float:
    __tracebackhide__ = True
    if reply.result["value"] is None:
        fail(BUGS["loss_value"], f"loss_function returned a {reply.result['type']}, not a scalar")
    return reply.result["value"]


@pytest.mark.points(2)
def test_loss_equals_the_cross_entropy_of_the_query_row(child, grading):
    """Is the loss the mean cross-entropy of the B*N query predictions?"""
    preds, labels = loss_inputs()
    value, expected = loss_value(loss(child, grading, preds, labels)), reference_loss(preds, labels)
    if abs(value - expected) > 1e-4 * max(1.0, abs(expected)):
        fail(BUGS["loss_value"], f"loss {value:.5f}, query-row cross-entropy {expected:.5f}")


@pytest.mark.points(2)
def test_loss_ignores_the_support_rows(child, grading):
    """Do support predictions leave the loss and its gradient untouched?"""
    preds, labels = loss_inputs()
    moved = preds.copy()
    moved[:, :-1] = np.random.default_rng(5).normal(0, 5, size=moved[:, :-1].shape)
    reply = loss(child, grading, preds, labels)
    value, value_moved = loss_value(reply), loss_value(loss(child, grading, moved, labels))
    if abs(value - value_moved) > 1e-4 * max(1.0, abs(value)):
        fail(BUGS["loss_all_rows"], f"loss {value:.5f} became {value_moved:.5f}")
    grad = reply.arrays.get("grad")
    if grad is not None and np.abs(grad[:, :-1]).max() > 1e-7:
        fail(BUGS["loss_all_rows"], "support rows of preds receive gradient")


@pytest.mark.points(2)
def test_loss_is_a_scalar_tensor_that_carries_gradient(child, grading):
    """Is the loss a torch scalar whose backward reaches the query predictions?"""
    preds, labels = loss_inputs()
    reply = loss(child, grading, preds, labels)
    result = reply.result
    if result["type"] != "Tensor":
        fail(BUGS["loss_detached"], f"loss_function returned a {result['type']}")
    if result.get("shape") not in ([], [1]):
        fail(BUGS["loss_value"], f"the loss has shape {result.get('shape')}, not a scalar")
    if not result["requires_grad"]:
        fail(BUGS["loss_detached"], "the returned tensor does not require grad")
    grad = reply.arrays.get("grad")
    if grad is None or not np.isfinite(grad).all() or np.abs(grad[:, -1]).max() == 0:
        fail(BUGS["loss_detached"], "backward() gives no gradient on the query predictions")
