"""Feedback that teaches: one message per classic bug, naming the likely bug and its fix.

Checks fail with `fail(BUGS[key], detail)`, so every message lives here, once, and the
grader's own tests can look for it.
"""

from __future__ import annotations

import pytest

BUGS = {
    "sample_shape": (
        "_sample returns the wrong type, shape or dtype: return two float32 NumPy arrays, "
        "images [K+1, N, 784] and one-hot labels [K+1, N, N] (np.eye(N)[...], .astype(np.float32))"
    ),
    "batch_shape": (
        "a DataLoader over your DataGenerator does not give [B, K+1, N, 784] and [B, K+1, N, N] "
        "float32 batches: make _sample return exactly two float32 arrays of the documented shapes"
    ),
    "not_a_drawing": (
        "some sampled images are not drawings of the images passed to DataGenerator: index the "
        "images array with the sampled (character, drawing) pairs, do not modify or mix images"
    ),
    "column_mixes_characters": (
        "class-major reshape or transposed indexing: a support column holds drawings of several "
        "characters; images[k, n] must be drawing k of class n, so build [K+1, N] (row k, "
        "column n) and do not reshape [N, K+1] data into [K+1, N]"
    ),
    "classes_repeat": (
        "the N classes of a task are not N distinct characters: draw them without replacement, "
        "self.rng.choice(C, size=N, replace=False)"
    ),
    "support_query_overlap": (
        "support/query overlap: a query image repeats one of its class's support drawings; draw "
        "the K+1 drawings of each class together without replacement and keep the last as query"
    ),
    "drawings_repeat": (
        "drawings repeat within a class: pick the K+1 drawings of a class without replacement, "
        "self.rng.choice(D, size=K+1, replace=False)"
    ),
    "query_not_one_per_class": (
        "the query row does not hold one drawing of each of the N classes: take one further "
        "drawing of every class, then permute the query columns"
    ),
    "query_labels_wrong": (
        "query labels do not match query images: shuffle the query images and the query labels "
        "with one and the same permutation (images[K] = images[K, order]; labels[K] = "
        "labels[K, order])"
    ),
    "support_labels_order": (
        "support rows are not in fixed class order: row k < K, column n must be a drawing of class "
        "n with label e_n; shuffle the query row only"
    ),
    "query_not_shuffled": (
        "query not shuffled: the query row is in the same order as the support rows (or "
        "shuffled non-uniformly); shuffle the query columns, images and labels with one "
        "permutation, order = self.rng.permutation(N)"
    ),
    "unreachable_character": (
        "some characters are never sampled: draw classes from all C characters, "
        "self.rng.choice(C, ...) with C = images.shape[0] (an off-by-one range misses one)"
    ),
    "rng_not_self_rng": (
        "RNG not taken from self.rng: the same seed does not give the same tasks; take every "
        "random number from self.rng (not np.random.*, random.*, torch.* or a new default_rng)"
    ),
    "seed_ignored": (
        "different seeds give the same tasks: build self.rng from the seed argument, "
        "np.random.default_rng(seed), and draw from it"
    ),
    "forward_shape": (
        "output of the wrong shape: forward must return float logits [B, K+1, N, N] for every "
        "example, support rows included; reshape the LSTM output [B, (K+1)*N, N] back to "
        "[B, K+1, N, N]"
    ),
    "label_leak": (
        "query labels leaked into the model: its predictions change when the query labels "
        "change; feed zeros in place of row K's labels (torch.zeros_like + torch.cat), never "
        "the true ones"
    ),
    "inputs_modified": (
        "input labels zeroed in place: forward changed the tensors it was given (e.g. "
        "labels[:, -1] = 0), which also zeroes the labels the loss sees; build a new tensor "
        "with torch.zeros_like and torch.cat instead"
    ),
    "class_major": (
        "class-major reshape: support predictions depend on the query row, so query examples "
        "sit in the middle of the sequence; concatenate to [B, K+1, N, 784+N] and reshape "
        "row by row to [B, (K+1)*N, 784+N] (no transpose/permute first), query row last"
    ),
    "loss_value": (
        "the loss is not the cross-entropy of the query row: keep preds[:, -1] and "
        "labels[:, -1], flatten to [B*N, N], targets = argmax, F.cross_entropy (mean)"
    ),
    "loss_all_rows": (
        "loss over all rows: support predictions change the loss; compute the cross-entropy "
        "of the query row (row K) only, preds[:, -1] against labels[:, -1]"
    ),
    "loss_detached": (
        "detached or NumPy loss: loss_function must return a torch scalar that carries "
        "gradient back to preds; no .item(), .detach(), .numpy() or torch.tensor(...) on it"
    ),
    "accuracy_chance": (
        "accuracy at chance: the trained model predicts no better than guessing; check that both "
        "LSTMs read along each task's sequence (batch_first=True: [B, (K+1)*N, 784+N]), that "
        "the support rows carry their labels, and that the loss is the query row's cross-entropy"
    ),
    "accuracy_low": (
        "accuracy below the threshold: the model learns, but too little in the grader's budget; "
        "compare your forward and loss with the numbered steps (two stacked LSTMs, hidden_dim "
        "then N units, sequence in row order, query row last)"
    ),
    "student_sampler": (
        "training on your own DataGenerator does not reach the threshold although the grader's "
        "sampler may: check the episode checks (query shuffling, labels matching images)"
    ),
}


def fail(message: str, detail: str = "") -> None:
    """Fail the current check with `message` (and `detail`, what was observed)."""
    __tracebackhide__ = True
    pytest.fail(f"{message}. Observed: {detail}" if detail else message, pytrace=False)
