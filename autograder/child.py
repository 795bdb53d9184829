"""The grader's harness inside the child process: import a submission and serve requests.

Started by `autograder.runner.ChildSession` as `python -I child.py --submission DIR --io DIR`
in a fresh working folder. It reads one JSON request per line on stdin, runs the submission's
code, and answers each request with `io/reply-<id>.json` (written atomically) plus `.npy`
arrays. It imports only the standard library, NumPy, torch and the staged `kit` modules; the
submission's two files are imported lazily, so that a `models.py` that fails to import costs
the model checks only.

Letters: B tasks per batch, K shots, N classes, 784 = 28 x 28 pixels.

Nothing this process returns is trusted: the grader checks every array and computes every
verdict itself. What the submission prints goes to a capped stream, so a flood of debug output
costs neither time nor points.
"""

from __future__ import annotations

import argparse
import importlib.util
import io as _io
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

# Words of PyTorch's dtype-mismatch errors (a float64 tensor created in forward meeting float32
# weights): "RNN input dtype (torch.float64) does not match weight dtype", "expected scalar type
# Float but found Double", "mat1 and mat2 must have the same dtype".
DTYPE_ERRORS = ("does not match weight dtype", "found Double", "must have the same dtype")
OUTPUT_CAP = 64 * 1024  # characters of printed output kept per stream; the rest is counted


class CappedStream(_io.TextIOBase):
    """A text stream that writes its first `cap` characters and only counts the rest."""

    def __init__(self, target, cap: int = OUTPUT_CAP) -> None:
        self.target, self.cap, self.written, self.dropped = target, cap, 0, 0

    def write(self, text: str) -> int:
        room = self.cap - self.written
        if room > 0:
            self.target.write(text[:room])
            self.written += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:  # for libraries that ask; such raw writes are capped by RLIMIT_FSIZE
        return self.target.fileno()

    @property
    def encoding(self) -> str:
        return "utf-8"


class SubmissionImportError(Exception):
    """One of the submission's files raised (or exited) while being imported."""


class Harness:
    def __init__(self, submission: Path, io: Path, device: str) -> None:
        self.submission, self.io, self.device = submission, io, device
        self.modules: dict[str, object] = {}
        self.model = None  # the MANN trained by `train`, used by `predict`
        self.request_id = 0  # the request being served
        self.reported = 0.0  # when `progress` last wrote
        self.training: dict | None = None  # model, optimiser, schedule, step, task stream
        self.kept: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # tasks kept by `predict`

    def progress(self, done: int) -> None:
        """Tell the grader how many training steps are done (`progress-<id>`, at most four
        times a second): it stops a training that falls behind its per-step allowance."""
        now = time.monotonic()
        if done > 1 and now - self.reported < 0.25:
            return
        self.reported = now
        from kit.atomic import write_atomic  # the staged kit, on sys.path once main() ran

        write_atomic(self.io / f"progress-{self.request_id}", str(done))

    # -- helpers -----------------------------------------------------------------------------

    def module(self, stem: str):
        """Import `<stem>.py` of the submission once; re-raise its import error every time."""
        if stem not in self.modules:
            path = self.submission / f"{stem}.py"
            if not path.is_file():
                self.modules[stem] = FileNotFoundError(f"the submission has no {stem}.py")
            else:
                spec = importlib.util.spec_from_file_location(stem, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[stem] = module
                marker = self.io / f"importing-{stem}.py"  # the grader's sign of a stuck import
                marker.touch()
                try:
                    spec.loader.exec_module(module)
                    self.modules[stem] = module
                except BaseException as error:  # noqa: BLE001 - SystemExit at import too
                    del sys.modules[stem]
                    self.modules[stem] = SubmissionImportError(
                        f"{stem}.py raised at import: {describe(error)}"
                    )
                finally:
                    marker.unlink(missing_ok=True)
        found = self.modules[stem]
        if isinstance(found, BaseException):
            raise found
        return found

    def array(self, request: dict, name: str) -> np.ndarray:
        return np.load(self.io / request["arrays"][name], allow_pickle=False)

    def shared(self, request: dict, name: str) -> np.ndarray:
        return np.load(request["params"]["shared"][name], allow_pickle=False, mmap_mode="r")

    def new_model(self, params: dict):
        import torch

        torch.manual_seed(params["seed"])
        models = self.module("models")
        model = models.MANN(params["N"], params["K"], params.get("hidden", 128))
        return model.to(self.device)

    def tensor(self, array: np.ndarray):
        import torch

        return torch.from_numpy(np.array(array)).to(self.device)

    # -- operations --------------------------------------------------------------------------

    def op_sample(self, request: dict) -> tuple[dict, dict]:
        """`count` tasks from each of several DataGenerators, drawn in turn (interleaved).

        Returns arrays images `[G, count, K+1, N, 784]` and labels `[G, count, K+1, N, N]` as
        float32 NumPy copies of what `_sample` returned (see `as_float32`), and what it returned
        before conversion: `types` (the container and its items' types), `dtypes`, and `why`,
        set (and no arrays) when the returns could not be converted to two stacked arrays.
        """
        p = request["params"]
        images = self.array(request, "images")
        load_data = self.module("load_data")
        generators = [load_data.DataGenerator(images, p["N"], p["K"], seed=s) for s in p["seeds"]]
        tasks = [[] for _ in generators]
        for _ in range(p["count"]):
            for generator, drawn in zip(generators, tasks):
                drawn.append(generator._sample())
        first = tasks[0][0]
        items = first if isinstance(first, (tuple, list)) else [first]
        result = {
            "types": [type(first).__name__] + [type(x).__name__ for x in items],
            "dtypes": [str(getattr(x, "dtype", type(x).__name__)) for x in items],
            "why": None,
        }
        try:
            if any(not isinstance(t, (tuple, list)) or len(t) != 2 for d in tasks for t in d):
                raise ValueError(f"_sample returned a {type(first).__name__}, not a pair")
            out_images = np.stack([np.stack([as_float32(t[0]) for t in d]) for d in tasks])
            out_labels = np.stack([np.stack([as_float32(t[1]) for t in d]) for d in tasks])
        except (TypeError, ValueError, RuntimeError) as error:
            result["why"] = f"{type(error).__name__}: {error}"[:300]
            return result, {}
        return result, {"images": out_images, "labels": out_labels}

    def op_batch(self, request: dict) -> tuple[dict, dict]:
        """One batch of `task_loader(DataGenerator(...), B)`: whatever the DataLoader yields."""
        from kit.loader import task_loader

        p = request["params"]
        load_data = self.module("load_data")
        generator = load_data.DataGenerator(self.array(request, "images"), p["N"], p["K"], seed=0)
        batch = next(iter(task_loader(generator, p["B"], seed=0)))
        kinds = [type(batch).__name__] + [type(x).__name__ for x in batch]
        arrays = {"images": _numpy(batch[0]), "labels": _numpy(batch[1])}
        return {"types": kinds, "length": len(batch)}, arrays

    def op_forward(self, request: dict) -> tuple[dict, dict]:
        """A fresh MANN (seeded) applied to each input pair; returns preds and the inputs after.

        `result["in_place"][i]` names the inputs of pair i that forward changed in place (their
        version counter moved), also when it restored their values. `result["float64"]`: forward
        failed on a dtype mismatch in float32 and ran with the model and inputs in float64. Param `device` ("meta"
        simulates a GPU: a tensor forward creates on the CPU then meets the inputs' device).
        """
        import torch

        p = request["params"]
        model = self.new_model(p)
        device = p.get("device") or self.device
        model = model.to(device)
        result, arrays = {"types": [], "in_place": [], "float64": False}, {}
        for i in range(p["pairs"]):
            images = self.tensor(self.array(request, f"images{i}")).to(device)
            labels = self.tensor(self.array(request, f"labels{i}")).to(device)
            if result["float64"]:
                images, labels = images.double(), labels.double()
            versions = images._version, labels._version
            try:
                preds = model(images, labels)
            except (RuntimeError, ValueError) as error:
                # A float64 tensor created in forward met the float32 weights: run the model
                # in float64 so that the rest of its logic can still be judged.
                if result["float64"] or not any(w in str(error) for w in DTYPE_ERRORS):
                    raise
                result["float64"], model = True, model.double()
                images, labels = images.double(), labels.double()
                versions = images._version, labels._version
                preds = model(images, labels)
            result["types"].append(type(preds).__name__)
            changed = [
                name
                for name, tensor, version in zip(("images", "labels"), (images, labels), versions)
                if tensor._version != version
            ]
            result["in_place"].append(changed)
            if not isinstance(preds, torch.Tensor):
                raise TypeError(f"MANN.forward returned a {type(preds).__name__}, not a Tensor")
            if device == "meta":
                continue
            arrays[f"preds{i}"] = _numpy(preds)
            arrays[f"images{i}"] = _numpy(images)
            arrays[f"labels{i}"] = _numpy(labels)
        return result, arrays

    def op_loss(self, request: dict) -> tuple[dict, dict]:
        """`loss_function(preds, labels)` with `preds` requiring grad; its value and gradient.

        `value` is the loss as a float when it holds one number; the array `values` holds
        every number it returned (an unreduced loss too); `grad` is the gradient of its sum.
        """
        import torch

        model = self.new_model(request["params"])
        preds = self.tensor(self.array(request, "preds")).requires_grad_(True)
        labels = self.tensor(self.array(request, "labels"))
        loss = model.loss_function(preds, labels)
        result = {"type": type(loss).__name__, "requires_grad": False, "value": None}
        arrays = {}
        try:
            values = np.asarray(_numpy(loss), dtype=np.float64)
            arrays["values"] = values
            if values.size == 1:
                result["value"] = float(values.reshape(()))
        except (TypeError, ValueError, RuntimeError):
            pass
        if isinstance(loss, torch.Tensor):
            result["shape"] = list(loss.shape)
            result["requires_grad"] = bool(loss.requires_grad)
            if loss.requires_grad and loss.numel() >= 1:
                loss.sum().backward()
                if preds.grad is not None:
                    arrays["grad"] = _numpy(preds.grad)
        return result, arrays

    def op_train(self, request: dict) -> tuple[dict, dict]:
        """Train the MANN with the kit's recipe (`kit.step`) for `steps` more steps.

        A call with `resume` false starts a fresh, seeded MANN whose optimiser and schedule
        span `total_steps`; a call with `resume` true continues the previous one (model,
        optimiser, schedule and task stream), so the grader can train in segments and measure
        between them. sampler "grader": the segment's batches given as indices
        `[S, B, K+1, N]` into the meta-train images `[C*D, 784]` and labels
        `[S, B, K+1, N, N]`; sampler "student": the submission's own DataGenerator on the
        meta-train images through the kit's `task_loader`. A NaN or infinite loss ends the
        call with `diverged` (the message naming the step) instead of an error.
        """
        from kit.step import Diverged, Recipe, prepare, train_step

        p = request["params"]
        if not p.get("resume") or self.training is None:
            model = self.new_model(p)
            recipe = Recipe(**p["recipe"])
            optimizer, scheduler = prepare(model, recipe, p["total_steps"])
            train_images = self.shared(request, "train_images")  # [C, D, 784]
            self.training = {"model": model, "optimizer": optimizer, "scheduler": scheduler,
                             "clip": recipe.clip_norm, "step": 0, "stream": None,
                             "flat": np.asarray(train_images).reshape(-1, train_images.shape[-1])}  # fmt: skip
            if p["sampler"] == "student":
                from kit.loader import task_loader

                load_data = self.module("load_data")
                generator = load_data.DataGenerator(
                    np.asarray(train_images), p["N"], p["K"], seed=p["seed"]
                )
                loader = task_loader(generator, p["batch_size"], seed=p["seed"])
                self.training["stream"] = iter(loader)
            self.model = model
        state = self.training
        if p["sampler"] == "grader":
            index, all_labels = self.array(request, "index"), self.array(request, "labels")
            batches = ((state["flat"][index[s]], all_labels[s]) for s in range(len(index)))
        else:
            batches = state["stream"]
        losses = []
        for _, (images, labels) in zip(range(p["steps"]), batches):
            images, labels = self.tensor(as_float32(images)), self.tensor(as_float32(labels))
            step = state["step"] + 1
            try:
                loss, _ = train_step(state["model"], state["optimizer"], images, labels,
                                     state["scheduler"], state["clip"], step)  # fmt: skip
            except Diverged as error:
                return {"steps": state["step"], "diverged": str(error), "final_loss": None}, {}
            state["step"] = step
            losses.append(loss)
            self.progress(len(losses))
        tail = losses[-50:]
        return {"steps": state["step"], "final_loss": float(np.mean(tail)) if tail else None}, {}

    def op_predict(self, request: dict) -> tuple[dict, dict]:
        """Predictions `[T, K+1, N, N]` of the trained MANN, in eval mode and without grad.

        With `keep`, the tasks sent are kept under that name; a later call with the same `keep`
        and no arrays predicts on them again (the grader's stop-check tasks, between segments).
        """
        import torch

        if self.model is None:
            raise RuntimeError("predict before train (a grader bug)")
        keep = request["params"].get("keep")
        if request["arrays"] or not keep:
            images, labels = self.array(request, "images"), self.array(request, "labels")
            if keep:
                self.kept[keep] = (images, labels)
        else:
            images, labels = self.kept[keep]
        was_training = self.model.training
        self.model.eval()
        chunks = []
        try:
            with torch.no_grad():
                for start in range(0, len(images), 500):
                    preds = self.model(
                        self.tensor(images[start : start + 500]),
                        self.tensor(labels[start : start + 500]),
                    )
                    chunks.append(_numpy(preds))
        finally:
            self.model.train(was_training)
        return {}, {"preds": np.concatenate(chunks)}

    # -- serving -----------------------------------------------------------------------------

    def serve(self, requests) -> None:
        for line in requests:
            request = json.loads(line)
            self.request_id = request["id"]
            reply = {"id": request["id"], "ok": True, "result": {}, "arrays": {}}
            try:
                result, arrays = getattr(self, "op_" + request["op"])(request)
                reply["result"] = result
                for name, array in arrays.items():
                    filename = f"out-{request['id']}-{name}.npy"
                    np.save(self.io / filename, array, allow_pickle=False)
                    reply["arrays"][name] = filename
            except BaseException as error:  # noqa: BLE001 - SystemExit in student code too
                reply = {"id": request["id"], "ok": False, "error": describe(error)}
                if isinstance(error, SubmissionImportError):
                    reply["error"], reply["phase"] = str(error), "import"
            sys.stdout.flush()
            sys.stderr.flush()
            from kit.atomic import write_atomic  # the staged kit, on sys.path once main() ran

            write_atomic(self.io / f"reply-{request['id']}.json", json.dumps(reply))


def as_float32(value) -> np.ndarray:
    """A float32 NumPy copy of an array-like: a torch tensor on any device (detached), a NumPy
    array of any numeric dtype (float64, int or bool one-hots), or a list of such."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif isinstance(value, (list, tuple)):
        value = np.stack([as_float32(item) for item in value])
    return np.array(value, dtype=np.float32)


def _numpy(value) -> np.ndarray:
    """A tensor or array-like as a NumPy array (CPU, detached), dtype kept."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def describe(error: BaseException) -> str:
    """`TypeName: message (models.py, line 12, in forward)`: the deepest submission frame."""
    text = f"{type(error).__name__}: {error}".strip()
    if len(text) > 600:
        text = text[:600] + " ..."
    frames = [f for f in traceback.extract_tb(error.__traceback__) if "/submission/" in f.filename]
    if frames:
        f = frames[-1]
        text += f" ({Path(f.filename).name}, line {f.lineno}, in {f.name})"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description="The autograder's child harness (internal).")
    parser.add_argument("--submission", type=Path, required=True)
    parser.add_argument("--io", type=Path, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    requests = sys.stdin
    sys.stdin = _io.StringIO("")  # the request pipe is the harness's alone
    sys.stdout, sys.stderr = CappedStream(sys.stdout), CappedStream(sys.stderr)
    # -I leaves the script's folder off sys.path: add the staged kit, then the submission
    # (so that `import load_data` inside models.py works).
    sys.path[:0] = [str(Path(__file__).resolve().parent), str(args.submission)]

    import torch

    torch.set_num_threads(args.threads)
    Harness(args.submission, args.io, args.device).serve(requests)


if __name__ == "__main__":
    main()
