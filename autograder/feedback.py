"""Feedback that teaches: one message per classic bug, naming the likely bug and its fix.

Checks fail with `fail(BUGS[key], detail)`, so every message lives here, once, and the
grader's own tests can look for it. Two hint levels, as in the student files
(`publish/hints.py`): `STEPS` names the fix in code, `OUTLINE` in words only; `grade --hints`
chooses (through `$AUTOGRADER_HINTS`, so that the checks read it without an option object).
"""

from __future__ import annotations

import os
import re
import textwrap

import pytest

# "... raised NotImplementedError: ... (models.py, line 58, in forward)": an untouched stub.
STUB = re.compile(r"raised NotImplementedError\b.*\((?P<file>[\w.]+), line \d+, in (?P<name>\w+)\)")

STEPS = {  # --hints steps: the likely bug and its fix, code-level
    "sample_shape": (
        "_sample returns the wrong type, shape or dtype: return two float32 NumPy arrays, "
        "images [K+1, N, 784] and one-hot labels [K+1, N, N] (np.eye(N)[...], .astype(np.float32))"
    ),
    "sample_tensors": (
        "_sample returns torch tensors: return NumPy arrays (the DataLoader turns them into "
        "tensors itself); build the task with NumPy, or call .numpy() on the tensors"
    ),
    "sample_dtype": (
        "_sample returns arrays that are not float32 (np.eye(N), np.zeros(...) and np.ones(...) "
        "give float64 unless told otherwise): pass dtype=np.float32 or return "
        "x.astype(np.float32)"
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
        "characters (typically a per-class list, [N, K+1, 784], reshaped straight to "
        "[K+1, N, 784]); images[k, n] must be drawing k of class n: transpose the per-class "
        "stack (np.stack(..., axis=1) or .transpose(1, 0, 2)), never reshape it"
    ),
    "classes_repeat": (
        "the N classes of a task are not N distinct characters: rng.choice and np.random.choice "
        "draw WITH replacement by default (replace=True); draw the classes without "
        "replacement, self.rng.choice(C, size=N, replace=False)"
    ),
    "support_query_overlap": (
        "support/query overlap: a query image repeats one of its class's support drawings "
        "(typically support and query drawn by two independent calls, which overlap more often "
        "as K grows, or rng.choice with its default replace=True); draw the K+1 drawings of "
        "each class in ONE call without replacement and keep the last as the query"
    ),
    "drawings_repeat": (
        "drawings repeat within a class: rng.choice and np.random.choice draw WITH replacement "
        "by default (replace=True); pick the K+1 drawings of a class without replacement, "
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
    "labels_by_position": (
        "query labels assigned by position after the query images were shuffled: labels[K] is "
        "still e_0, e_1, ... while images[K] is permuted; permute labels[K] with the same "
        "order as images[K]"
    ),
    "support_rows_shuffled": (
        "every row (or the whole task) shuffled: the support rows must keep the fixed class "
        "order (row k < K, column n is a drawing of class n, labelled e_n); shuffle the query "
        "row K only"
    ),
    "one_permutation_every_row": (
        "one permutation applied to every row: each query image still sits under the support "
        "column of its own class, so its position gives the answer away although its labels "
        "are shuffled; keep the support rows in class order and permute the query row only, "
        "images[K] and labels[K] with one permutation"
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
    "softmax_in_forward": (
        "forward returns probabilities (every row is non-negative and sums to 1): a softmax in "
        "forward; return the raw outputs of the last LSTM as logits, F.cross_entropy applies "
        "log-softmax itself"
    ),
    "device_mismatch": (
        "forward creates a tensor on the CPU while its inputs are on another device (the GPU when "
        "graded there): create tensors from the inputs, torch.zeros_like(labels[:, -1:]) or "
        "torch.zeros(..., device=labels.device, dtype=labels.dtype)"
    ),
    "dtype_mismatch": (
        "forward creates a float64 tensor (torch.tensor or torch.from_numpy of a NumPy array, or "
        "dtype=torch.float64) that meets the float32 weights: create tensors with the inputs' "
        "dtype, torch.zeros_like(labels[:, -1:]) or torch.zeros(..., dtype=labels.dtype)"
    ),
    "label_leak": (
        "query labels leaked into the model: its predictions change when the query labels "
        "change; feed zeros in place of row K's labels (torch.zeros_like + torch.cat), never "
        "the true ones"
    ),
    "inputs_modified": (
        "input labels zeroed in place: forward changed the tensors it was given (e.g. "
        "labels[:, -1] = 0, or through a view of them such as labels.reshape(...)), which also "
        "zeroes the labels the loss sees; build a new tensor with torch.zeros_like and "
        "torch.cat instead"
    ),
    "inputs_modified_restored": (
        "input tensors modified in place and restored: forward wrote into a tensor it was given "
        "(e.g. labels[:, -1] = 0, also through a view such as labels.reshape(...)) and put the "
        "values back; the caller's tensor may be in use meanwhile (and autograd may need it): "
        "never write into the inputs, build a new tensor with torch.zeros_like and torch.cat"
    ),
    "class_major": (
        "class-major reshape: support predictions depend on the query row, so query examples "
        "sit in the middle of the sequence; concatenate to [B, K+1, N, 784+N] and reshape "
        "row by row to [B, (K+1)*N, 784+N] (no transpose/permute first), query row last"
    ),
    "bidirectional": (
        "the model reads the sequence backwards too (a bidirectional LSTM, or a layer that mixes "
        "the whole sequence): even the first support prediction depends on the query row, so "
        "the support predictions see the queries; use one-directional LSTMs "
        "(bidirectional=False, the default) that read the support rows first, the query row "
        "last"
    ),
    "loss_value": (
        "the loss is not the cross-entropy of the query row: keep preds[:, -1] and "
        "labels[:, -1], flatten to [B*N, N], targets = argmax, F.cross_entropy (mean)"
    ),
    "loss_3d": (
        "cross-entropy on the 3-D query block without flattening: F.cross_entropy reads dimension "
        "1 of a [B, N, N] input as the classes, so the softmax runs over the query positions, "
        "not the classes; flatten preds[:, -1] to [B*N, N] and the targets to [B*N] first"
    ),
    "loss_target_axis": (
        "the targets are the argmax over the wrong axis of the query labels (this is right by "
        "accident when N = 2): the class of query example j is labels[:, -1, j].argmax(), i.e. "
        "labels[:, -1].argmax(dim=-1)"
    ),
    "loss_not_reduced": (
        "the loss is not reduced to a scalar: it holds one value per query example; take their "
        "mean (F.cross_entropy's default reduction='mean'), not reduction='none'"
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

# --hints outline: the same diagnosis, the fix in words only (no code), for every message whose
# steps-level text shows code.
OUTLINE = {
    "sample_shape": (
        "_sample returns the wrong type, shape or dtype: return a tuple of two float32 NumPy "
        "arrays, images [K+1, N, 784] and one-hot labels [K+1, N, N]"
    ),
    "sample_tensors": (
        "_sample returns torch tensors: return NumPy arrays (the DataLoader turns them into "
        "tensors itself)"
    ),
    "sample_dtype": (
        "_sample returns arrays that are not float32 (NumPy's identity, zeros and ones give "
        "float64 unless told otherwise): make both arrays float32"
    ),
    "column_mixes_characters": (
        "class-major reshape or transposed indexing: a support column holds drawings of several "
        "characters (typically a per-class list reshaped straight to [K+1, N]); images[k, n] "
        "must be drawing k of class n: swap the two axes of a per-class stack, never reshape it"
    ),
    "classes_repeat": (
        "the N classes of a task are not N distinct characters: NumPy's random choice draws WITH "
        "replacement by default; draw the N characters without replacement"
    ),
    "support_query_overlap": (
        "support/query overlap: a query image repeats one of its class's support drawings "
        "(typically support and query drawn independently, or drawn with replacement); draw the "
        "K+1 drawings of each class together without replacement and keep the last as the query"
    ),
    "drawings_repeat": (
        "drawings repeat within a class: NumPy's random choice draws WITH replacement by "
        "default; pick the K+1 drawings of a class without replacement"
    ),
    "query_labels_wrong": (
        "query labels do not match query images: shuffle the query images and the query labels "
        "with one and the same permutation"
    ),
    "labels_by_position": (
        "query labels assigned by position after the query images were shuffled: permute the "
        "query labels with the same order as the query images"
    ),
    "one_permutation_every_row": (
        "one permutation applied to every row: each query image still sits under the support "
        "column of its own class, so its position gives the answer away; keep the support rows "
        "in class order and permute the query row only, images and labels together"
    ),
    "query_not_shuffled": (
        "query not shuffled: the query row is in the same order as the support rows (or "
        "shuffled non-uniformly); shuffle the query columns, images and labels with one fresh "
        "permutation per task"
    ),
    "unreachable_character": (
        "some characters are never sampled: draw the classes from all C characters of the "
        "images passed in (an off-by-one range misses one)"
    ),
    "rng_not_self_rng": (
        "RNG not taken from self.rng: the same seed does not give the same tasks; take every "
        "random number from self.rng (not from NumPy's, Python's or torch's global generators)"
    ),
    "seed_ignored": (
        "different seeds give the same tasks: build self.rng from the seed argument and draw "
        "from it"
    ),
    "forward_shape": (
        "output of the wrong shape: forward must return float logits [B, K+1, N, N] for every "
        "example, support rows included; reshape the LSTM output back to [B, K+1, N, N]"
    ),
    "softmax_in_forward": (
        "forward returns probabilities (every row is non-negative and sums to 1): return the "
        "raw outputs of the last LSTM as logits; the cross-entropy normalises them itself"
    ),
    "device_mismatch": (
        "forward creates a tensor on the CPU while its inputs are on another device (the GPU when "
        "graded there): create every new tensor on the inputs' device, with their dtype"
    ),
    "dtype_mismatch": (
        "forward creates a float64 tensor that meets the float32 weights: create every new "
        "tensor with the inputs' dtype (and device)"
    ),
    "label_leak": (
        "query labels leaked into the model: its predictions change when the query labels "
        "change; feed zeros in place of row K's labels, never the true ones"
    ),
    "inputs_modified": (
        "input labels zeroed in place: forward changed the tensors it was given (directly or "
        "through a view of them), which also zeroes the labels the loss sees; build new tensors "
        "instead of writing into the inputs"
    ),
    "inputs_modified_restored": (
        "input tensors modified in place and restored: forward wrote into a tensor it was given "
        "and put the values back; never write into the inputs, build new tensors instead"
    ),
    "class_major": (
        "class-major reshape: support predictions depend on the query row, so query examples "
        "sit in the middle of the sequence; flatten the task row by row, query row last"
    ),
    "bidirectional": (
        "the model reads the sequence backwards too (a bidirectional LSTM, or a layer that mixes "
        "the whole sequence): even the first support prediction depends on the query row; use "
        "one-directional LSTMs that read the support rows first, the query row last"
    ),
    "loss_3d": (
        "cross-entropy on the 3-D query block without flattening: the cross-entropy reads "
        "dimension 1 of a [B, N, N] input as the classes, so the softmax runs over the query "
        "positions; flatten the query predictions to [B*N, N] and the targets to [B*N] first"
    ),
    "loss_target_axis": (
        "the targets are the argmax over the wrong axis of the query labels (right by accident "
        "when N = 2): the class of a query example is the argmax over its label's last axis"
    ),
    "loss_not_reduced": (
        "the loss is not reduced to a scalar: it holds one value per query example; return "
        "their mean"
    ),
    "loss_value": (
        "the loss is not the cross-entropy of the query row: keep the query row of predictions "
        "and labels, flatten to [B*N, N], take the class indices as targets, average"
    ),
    "loss_all_rows": (
        "loss over all rows: support predictions change the loss; compute the cross-entropy of "
        "the query row (row K) only"
    ),
    "loss_detached": (
        "detached or NumPy loss: loss_function must return a torch scalar that carries gradient "
        "back to preds; never leave autograd (no conversion to a number, NumPy or a new tensor)"
    ),
    "accuracy_chance": (
        "accuracy at chance: the trained model predicts no better than guessing; check that both "
        "LSTMs read along each task's sequence (batch first), that the support rows carry their "
        "labels, and that the loss is the query row's cross-entropy"
    ),
}
HINTS_VARIABLE = "AUTOGRADER_HINTS"  # steps (default) or outline, set by `grade --hints`


class Messages(dict):
    """`BUGS[key]`: the message of the hint level in `$AUTOGRADER_HINTS` (read at each use)."""

    def __getitem__(self, key: str) -> str:
        if os.environ.get(HINTS_VARIABLE, "steps") == "outline" and key in OUTLINE:
            return OUTLINE[key]
        return super().__getitem__(key)


BUGS = Messages(STEPS)


def not_judged(root: str) -> str:
    """The message of a check whose presupposed property, the check titled `root`, failed."""
    return f"not judged on its own: fix '{root}' first"


def fail(message: str, detail: str = "") -> None:
    """Fail the current check with `message` (and `detail`, what was observed)."""
    __tracebackhide__ = True
    pytest.fail(f"{message}. Observed: {detail}" if detail else message, pytrace=False)


def feedback_lines(failed: list, width: int = 100) -> list[str]:
    """The printed feedback on failed checks (records with `name` and `message`): one line per
    check, except that the checks failed by an unimplemented stub share one line per function."""
    lines, stubs = [], {}
    for record in failed:
        stub = STUB.search(record.message)
        if stub is None:
            lines.append(
                textwrap.fill(
                    f"- {record.name}: {record.message}",
                    width,
                    subsequent_indent="  ",
                    break_on_hyphens=False,
                )
            )
        else:
            stubs.setdefault((stub["file"], stub["name"]), []).append(record.name)
    stub_lines = [
        textwrap.fill(
            f"- {name} in {file} is not implemented yet (it raises NotImplementedError): "
            f"{len(checks)} check{'s' if len(checks) > 1 else ''} wait for it",
            width,
            subsequent_indent="  ",
        )
        for (file, name), checks in stubs.items()
    ]
    return stub_lines + lines
