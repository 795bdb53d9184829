"""Model checks: `MANN.forward` and `MANN.loss_function`, behaviour seen from outside.

Letters: B tasks, K shots, N classes, 784 pixels. Tasks are built here (`tasks`) over random
images, with fixed query orders that include 3-cycles (so that an argmax over the wrong axis
shows at N = 3); the child builds a fresh, seeded MANN for every call and returns its outputs
as arrays; every comparison happens here. A check whose presupposed property failed (the
output's shape, the loss being a scalar) says which check to fix first.
"""

from __future__ import annotations

import numpy as np
import pytest

from autograder.feedback import BUGS, fail, not_judged
from autograder.runner import ChildError

B = 4
SHAPES = [(1, 2), (2, 3)]  # (K, N)
SHAPE_IDS = ["K1-N2", "K2-N3"]
ATOL = 1e-5  # float32 LSTM outputs recomputed on identical inputs agree far closer than this
QUERY_ORDERS_N3 = [(1, 2, 0), (2, 0, 1), (0, 2, 1), (1, 0, 2)]  # two 3-cycles, two swaps
SHAPE_CHECK = "forward returns logits of the documented shape"
SUPPORT_ROWS_CHECK = "loss ignores the support rows"
# Words of PyTorch's device-mismatch errors (CUDA: "Expected all tensors to be on the same
# device"; the meta device that simulates one here: "is not on the expected device meta").
DEVICE_ERRORS = ("same device", "expected device", "at least two devices")

pytestmark = pytest.mark.visibility("visible")


def tasks(num_shots: int, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """B tasks over random images: `[B, K+1, N, 784]` and one-hot `[B, K+1, N, N]`, support
    rows in class order, query row b in order `QUERY_ORDERS_N3[b]` (N = 3) or a random one."""
    rng = np.random.default_rng(seed)
    images = rng.random((B, num_shots + 1, num_classes, 784), dtype=np.float32)
    eye = np.eye(num_classes, dtype=np.float32)
    labels = np.broadcast_to(eye, (B, num_shots + 1, num_classes, num_classes)).copy()
    for b in range(B):
        order = QUERY_ORDERS_N3[b] if num_classes == 3 else rng.permutation(num_classes)
        labels[b, num_shots] = eye[list(order)]
    return images, labels


def call_forward(child, grading, arrays: dict, num_shots: int, num_classes: int, **params):
    """The child's `forward` reply; a device mismatch in forward gets its named message."""
    __tracebackhide__ = True
    try:
        return child.call(
            "forward",
            "MANN.forward",
            arrays=arrays,
            N=num_classes,
            K=num_shots,
            seed=grading.seed,
            **params,
        )
    except ChildError as error:
        if any(words in str(error) for words in DEVICE_ERRORS):
            fail(BUGS["device_mismatch"], str(error))
        raise


def forward(
    child,
    grading,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    num_shots: int,
    num_classes: int,
    check_shape: bool = True,
    root: bool = False,
):
    """Predictions of ONE fresh MANN on each (images, labels) pair, checked for shape (the
    shape check's own message when `root`, else "not judged on its own").

    Returns a list of (preds, images after, labels after, names of inputs changed in place).
    """
    __tracebackhide__ = True
    arrays = {}
    for i, (images, labels) in enumerate(pairs):
        arrays[f"images{i}"], arrays[f"labels{i}"] = images, labels
    reply = call_forward(child, grading, arrays, num_shots, num_classes, pairs=len(pairs))
    message = BUGS["forward_shape"] if root else not_judged(SHAPE_CHECK)
    if root and reply.result.get("float64"):  # the child could run forward in float64 only
        fail(BUGS["dtype_mismatch"], "forward fails on float32 inputs with a dtype mismatch")
    out = []
    for i in range(len(pairs)):
        preds = reply.arrays[f"preds{i}"]
        expected = (B, num_shots + 1, num_classes, num_classes)
        if check_shape and preds.shape != expected:
            fail(message, f"K={num_shots}, N={num_classes}: {preds.shape}")
        if check_shape and (
            not np.issubdtype(preds.dtype, np.floating) or not np.isfinite(preds).all()
        ):
            fail(message, f"dtype {preds.dtype}, finite: {np.isfinite(preds).all()}")
        in_place = reply.result["in_place"][i]
        out.append((preds, reply.arrays[f"images{i}"], reply.arrays[f"labels{i}"], in_place))
    return out


def largest_change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.mark.points(2)
@pytest.mark.parametrize(("num_shots", "num_classes"), SHAPES, ids=SHAPE_IDS)
def test_forward_returns_logits_of_the_documented_shape(child, grading, num_shots, num_classes):
    """Does forward map [B, K+1, N, 784] and [B, K+1, N, N] to finite logits [B, K+1, N, N]?"""
    forward(child, grading, [tasks(num_shots, num_classes)], num_shots, num_classes, root=True)


@pytest.mark.points(1)
def test_forward_returns_logits_not_probabilities(child, grading):
    """Are forward's outputs logits, not probabilities (rows that are >= 0 and sum to 1)?"""
    K, N = 2, 3
    ((preds, _, _, _),) = forward(child, grading, [tasks(K, N)], K, N)
    rows = preds.astype(np.float64)
    if (rows >= 0).all() and np.abs(rows.sum(-1) - 1).max() < 1e-4:
        fail(BUGS["softmax_in_forward"], "every row of the output sums to 1")


@pytest.mark.points(1)
def test_forward_creates_its_tensors_on_the_inputs_device(child, grading):
    """Does forward still run when model and inputs sit on another device than the CPU? (The
    "meta" device simulates a GPU: any tensor created on the CPU then meets the wrong device.)"""
    K, N = 2, 3
    images, labels = tasks(K, N)
    forward(child, grading, [(images, labels)], K, N, check_shape=False)  # runs at all?
    try:
        call_forward(
            child, grading, {"images0": images, "labels0": labels}, K, N, pairs=1, device="meta"
        )
    except ChildError:
        pass  # another error on the meta device (say .item()): not this check's business


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
    (preds, *_), (preds_other, *_), (preds_zeroed, *_) = forward(
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
    ((_, images_after, labels_after, in_place),) = forward(
        child, grading, [(images, labels)], K, N, check_shape=False
    )
    if not np.array_equal(labels_after, labels):
        rows = sorted({int(r) for r in np.argwhere(labels_after != labels)[:, 1]})
        fail(BUGS["inputs_modified"], f"labels changed in rows {rows}")
    if not np.array_equal(images_after, images):
        fail(BUGS["inputs_modified"], "the images tensor changed")
    if in_place:
        fail(
            BUGS["inputs_modified_restored"],
            f"{' and '.join(in_place)} written in place (their values were restored)",
        )


@pytest.mark.points(3)
def test_support_predictions_do_not_depend_on_the_query_row(child, grading):
    """Read in row order (support first, query last), can a support prediction see a query?"""
    K, N = 2, 3
    images, labels = tasks(K, N)
    replaced = images.copy()
    replaced[:, K] = np.random.default_rng(1).random(replaced[:, K].shape, dtype=np.float32)
    (preds, *_), (preds_replaced, *_) = forward(
        child, grading, [(images, labels), (replaced, labels)], K, N
    )
    change = largest_change(preds[:, :K], preds_replaced[:, :K])
    if change > ATOL:
        # Read class by class, the first class's support examples come before any query; read
        # both ways (a bidirectional LSTM), even the sequence's first example sees the queries.
        first = largest_change(preds[:, 0, 0], preds_replaced[:, 0, 0]) > ATOL
        observed = f"support predictions moved by up to {change:.3g}"
        fail(BUGS["bidirectional" if first else "class_major"], observed)


# -- loss_function ------------------------------------------------------------------------------


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean cross-entropy of logits `[M, N]` against class indices `[M]`, in float64."""
    logits = logits.astype(np.float64)
    top = logits.max(-1, keepdims=True)
    log_z = np.log(np.exp(logits - top).sum(-1)) + top[:, 0]
    return float((log_z - logits[np.arange(len(targets)), targets]).mean())


def reference_loss(preds: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of the query row, in float64: the value the spec fixes."""
    n = preds.shape[-1]  # N classes
    return cross_entropy(preds[:, -1].reshape(-1, n), labels[:, -1].reshape(-1, n).argmax(-1))


def known_wrong_losses(preds: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The values of classic wrong losses on the query row, by the key of their message."""
    n = preds.shape[-1]  # N classes
    query, targets = preds[:, -1], labels[:, -1]  # [B, N, N]
    by_column = query.transpose(0, 2, 1).reshape(-1, n)  # softmax over dim 1: query positions
    return {
        # F.cross_entropy(preds[:, -1], labels[:, -1].argmax(-1)) and the soft-target variant
        # F.cross_entropy(preds[:, -1], labels[:, -1]): classes read from dimension 1.
        "loss_3d": cross_entropy(by_column, targets.argmax(-1).reshape(-1)),
        "loss_3d_soft": cross_entropy(by_column, targets.argmax(-2).reshape(-1)),
        "loss_target_axis": cross_entropy(query.reshape(-1, n), targets.argmax(-2).reshape(-1)),
    }


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


def loss_values(reply) -> np.ndarray:
    """Every number the loss returned (float64), whatever its container."""
    __tracebackhide__ = True
    values = reply.arrays.get("values")
    if values is None:
        fail(BUGS["loss_value"], f"loss_function returned a {reply.result['type']}, not a number")
    return values


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 * max(1.0, abs(b))


@pytest.mark.points(2)
def test_loss_equals_the_cross_entropy_of_the_query_row(child, grading):
    """Is the loss the mean cross-entropy of the B*N query predictions? (An unreduced loss is
    judged on its mean; being a scalar is the scalar check's business.)"""
    preds, labels = loss_inputs()
    reply = loss(child, grading, preds, labels)
    values, expected = loss_values(reply), reference_loss(preds, labels)
    value = float(values.mean())  # an unreduced loss is judged on its mean (see the scalar check)
    if close(value, expected):
        return
    observed = f"loss {value:.5f}, query-row cross-entropy {expected:.5f}"
    if values.size > 1:
        observed += f" (the loss holds {values.size} numbers: their mean)"
    for key, wrong in known_wrong_losses(preds, labels).items():
        if close(value, wrong):
            fail(BUGS[key.removesuffix("_soft")], observed)
    moved = preds.copy()
    moved[:, :-1] = np.random.default_rng(5).normal(0, 5, size=moved[:, :-1].shape)
    if not close(float(loss_values(loss(child, grading, moved, labels)).mean()), value):
        fail(not_judged(SUPPORT_ROWS_CHECK), observed)
    fail(BUGS["loss_value"], observed)


@pytest.mark.points(2)
def test_loss_ignores_the_support_rows(child, grading):
    """Do support predictions leave the loss and its gradient untouched? (Judged on every number
    the loss returns, reduced or not.)"""
    preds, labels = loss_inputs()
    moved = preds.copy()
    moved[:, :-1] = np.random.default_rng(5).normal(0, 5, size=moved[:, :-1].shape)
    reply = loss(child, grading, preds, labels)
    values, values_moved = loss_values(reply), loss_values(loss(child, grading, moved, labels))
    change = np.abs(values - values_moved).max() if values.shape == values_moved.shape else 1.0
    if change > 1e-4 * max(1.0, float(np.abs(values).max())):
        fail(BUGS["loss_all_rows"], f"loss {values.mean():.5f} became {values_moved.mean():.5f}")
    grad = reply.arrays.get("grad")
    if grad is not None and np.abs(grad[:, :-1]).max() > 1e-7:
        fail(BUGS["loss_all_rows"], "support rows of preds receive gradient")


@pytest.mark.points(2)
def test_loss_is_a_scalar_tensor_that_carries_gradient(child, grading):
    """Is the loss a torch scalar whose backward reaches the query predictions? (A 1-element
    tensor counts as a scalar.)"""
    preds, labels = loss_inputs()
    reply = loss(child, grading, preds, labels)
    result = reply.result
    if result["type"] != "Tensor":
        fail(BUGS["loss_detached"], f"loss_function returned a {result['type']}")
    if result.get("shape") not in ([], [1]):
        fail(BUGS["loss_not_reduced"], f"the loss has shape {result.get('shape')}")
    if not result["requires_grad"]:
        fail(BUGS["loss_detached"], "the returned tensor does not require grad")
    grad = reply.arrays.get("grad")
    if grad is None or not np.isfinite(grad).all() or np.abs(grad[:, -1]).max() == 0:
        fail(BUGS["loss_detached"], "backward() gives no gradient on the query predictions")
