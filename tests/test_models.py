"""Tests of the reference MANN (solutions/models.py) against the homework contract.

Letters: B tasks per batch, K shots, N classes, 784 = 28 x 28 pixels. Inputs are random
images `[B, K+1, N, 784]` with valid one-hot labels `[B, K+1, N, N]` (support rows in class
order, the query row shuffled), so nothing here depends on the data or on training.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kit.submission import load_submission

SHAPES = [(1, 1, 2), (4, 2, 3), (3, 3, 5), (2, 5, 4)]  # (B, K, N)


@pytest.fixture(scope="module")
def MANN() -> type:
    return load_submission("solutions").models.MANN


def random_batch(
    batch_size: int, num_shots: int, num_classes: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """images `[B, K+1, N, 784]` in [0, 1] and one-hot labels `[B, K+1, N, N]`."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch_size, num_shots + 1, num_classes, 784, generator=generator)
    classes = torch.arange(num_classes).repeat(batch_size, num_shots + 1, 1)  # [B, K+1, N]
    for task in range(batch_size):
        classes[task, -1] = torch.randperm(num_classes, generator=generator)
    return images, F.one_hot(classes, num_classes).float()


def make_model(MANN, num_classes: int, num_shots: int, hidden_dim: int = 32):
    torch.manual_seed(0)
    return MANN(num_classes, num_shots, hidden_dim)


@pytest.mark.parametrize(("batch_size", "num_shots", "num_classes"), SHAPES)
def test_forward_returns_logits_of_shape_b_k1_n_n(MANN, batch_size, num_shots, num_classes):
    model = make_model(MANN, num_classes, num_shots)
    preds = model(*random_batch(batch_size, num_shots, num_classes))
    assert preds.shape == (batch_size, num_shots + 1, num_classes, num_classes)
    assert preds.dtype == torch.float32


@pytest.mark.parametrize(("batch_size", "num_shots", "num_classes"), SHAPES)
def test_changing_the_query_labels_changes_no_prediction(
    MANN,
    batch_size,
    num_shots,
    num_classes,
):
    """Is the query row's label hidden from the model (no label leak)?"""
    model = make_model(MANN, num_classes, num_shots)
    images, labels = random_batch(batch_size, num_shots, num_classes)
    other_labels = labels.clone()
    other_labels[:, -1] = labels[:, -1].roll(1, dims=-1)  # other one-hot query labels
    garbage_labels = labels.clone()
    garbage_labels[:, -1] = 7.0  # not even one-hot: the row must not be read at all
    with torch.no_grad():
        preds = model(images, labels)
        assert torch.equal(preds, model(images, other_labels)), "query labels leak into preds"
        assert torch.equal(preds, model(images, garbage_labels)), "query labels leak into preds"


def test_forward_and_loss_leave_their_inputs_unchanged(MANN):
    """Are images and labels equal before and after, with no in-place write at all?"""
    model = make_model(MANN, 3, 2)
    images, labels = random_batch(4, 2, 3)
    images_before, labels_before = images.clone(), labels.clone()
    versions = (images._version, labels._version)  # bumped by every in-place operation
    preds = model(images, labels)
    model.loss_function(preds, labels).backward()
    assert torch.equal(images, images_before) and torch.equal(labels, labels_before)
    assert (images._version, labels._version) == versions, "an in-place write to the inputs"


def test_forward_accepts_labels_that_need_no_gradient_and_images_that_do(MANN):
    """Inputs that require grad must not be modified either (in-place on them would raise)."""
    model = make_model(MANN, 2, 1)
    images, labels = random_batch(2, 1, 2)
    images.requires_grad_(True)
    model.loss_function(model(images, labels), labels).backward()
    assert images.grad is not None and images.grad.shape == images.shape


@pytest.mark.parametrize(("batch_size", "num_shots", "num_classes"), SHAPES)
def test_loss_is_the_cross_entropy_of_the_query_row(MANN, batch_size, num_shots, num_classes):
    """Does the loss equal mean -log softmax(preds[:, K])[true class], computed by hand?"""
    model = make_model(MANN, num_classes, num_shots)
    _, labels = random_batch(batch_size, num_shots, num_classes)
    preds = 3 * torch.randn(batch_size, num_shots + 1, num_classes, num_classes)
    log_probs = preds[:, -1] - preds[:, -1].logsumexp(-1, keepdim=True)  # [B, N, N]
    expected = -(log_probs * labels[:, -1]).sum(-1).mean()
    torch.testing.assert_close(model.loss_function(preds, labels), expected)


def test_loss_ignores_the_support_rows(MANN):
    """Do support-row predictions contribute nothing (value and gradient)?"""
    model = make_model(MANN, 3, 2)
    _, labels = random_batch(4, 2, 3)
    preds = torch.randn(4, 3, 3, 3, requires_grad=True)
    loss = model.loss_function(preds, labels)
    other = preds.detach().clone()
    other[:, :-1] = torch.randn(4, 2, 3, 3) * 10
    torch.testing.assert_close(model.loss_function(other, labels), loss.detach())
    loss.backward()
    assert torch.count_nonzero(preds.grad[:, :-1]) == 0, "support rows receive gradient"
    assert torch.count_nonzero(preds.grad[:, -1]) > 0


def test_loss_is_a_differentiable_scalar_whose_gradient_reaches_layer1(MANN):
    model = make_model(MANN, 3, 1)
    images, labels = random_batch(4, 1, 3)
    loss = model.loss_function(model(images, labels), labels)
    assert isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.requires_grad
    loss.backward()
    gradient = model.layer1.weight_ih_l0.grad
    assert gradient is not None and torch.count_nonzero(gradient) > 0


def test_query_predictions_depend_on_the_support_labels(MANN):
    """Sanity: the support labels are read (swapping two classes' labels changes the answer)."""
    model = make_model(MANN, 3, 2)
    images, labels = random_batch(4, 2, 3)
    swapped = labels.clone()
    swapped[:, :-1] = labels[:, :-1, :, [1, 0, 2]]
    with torch.no_grad():
        preds, preds_swapped = model(images, labels), model(images, swapped)
    assert not torch.allclose(preds[:, -1], preds_swapped[:, -1])


def test_the_sequence_is_read_support_first_query_last(MANN):
    """Are predictions causal in the documented order: the query images cannot change the
    support predictions, and a later support row cannot change an earlier one?"""
    model = make_model(MANN, 3, 2)
    images, labels = random_batch(2, 2, 3)
    changed = images.clone()
    changed[:, -1] = torch.rand(2, 3, 784)
    changed_last_support = images.clone()
    changed_last_support[:, 1] = torch.rand(2, 3, 784)
    with torch.no_grad():
        preds = model(images, labels)
        torch.testing.assert_close(model(changed, labels)[:, :-1], preds[:, :-1])
        torch.testing.assert_close(model(changed_last_support, labels)[:, 0], preds[:, 0])
        assert not torch.allclose(model(changed, labels)[:, -1], preds[:, -1])


def test_hidden_dim_sets_the_first_lstm_and_n_the_second_and_the_readout(MANN):
    model = MANN(4, 2, hidden_dim=48)
    assert model.layer1.input_size == 784 + 4 and model.layer1.hidden_size == 48
    assert model.layer2.input_size == 48 and model.layer2.hidden_size == 4
    assert (model.readout.in_features, model.readout.out_features) == (4, 4)
    assert MANN(4, 2).layer1.hidden_size == 128  # the contract's default


def test_the_logits_are_the_readout_of_the_second_lstm_so_not_bounded_by_its_tanh(MANN):
    """Scaling the read-out scales the logits past (-1, 1): forward applies it last."""
    model = make_model(MANN, 2, 1)
    images, labels = random_batch(3, 1, 2)
    with torch.no_grad():
        before = model(images, labels)
        model.readout.weight.mul_(10.0)
        model.readout.bias.zero_()
        after = model(images, labels)
    assert after.abs().max() > 1.0
    assert not torch.allclose(before, after)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_forward_and_loss_run_on_cuda(MANN):
    model = make_model(MANN, 3, 2).cuda()
    images, labels = (tensor.cuda() for tensor in random_batch(4, 2, 3))
    preds = model(images, labels)
    assert preds.device.type == "cuda" and preds.shape == (4, 3, 3, 3)
    loss = model.loss_function(preds, labels)
    loss.backward()
    assert loss.device.type == "cuda"
    cpu_model = make_model(MANN, 3, 2)
    cpu_preds = cpu_model(*random_batch(4, 2, 3))
    # cuDNN LSTM kernels differ from the CPU ones by ~3e-4 on an H200 (measured): loose bound.
    torch.testing.assert_close(preds.cpu(), cpu_preds, atol=2e-3, rtol=1e-2)
