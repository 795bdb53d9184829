"""What the benchmark scripts share: the machine's description, a table, an atomic JSON file."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from kit.atomic import write_atomic


def machine_state(device: torch.device) -> dict:
    """Where a number was measured: the device, the CPU, and how busy the machine was."""
    state = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if hasattr(os, "getloadavg"):
        state["load_average_1min_at_start"] = round(os.getloadavg()[0], 2)
    return state


def print_table(rows: list[dict], columns: list[str]) -> None:
    """A plain aligned text table of `rows`, one column per key in `columns`."""
    cells = [[_format(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))


def write_json(path: Path, payload: dict) -> None:
    """Write `payload` to `path` atomically: a reader never sees a half-written file."""
    write_atomic(path, json.dumps(payload, indent=2) + "\n")


def _format(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    return str(value)


def add_rows_option(parser, name: str) -> None:
    """`--json FILE` (default `results/<name>.json`), where `append_rows` keeps a benchmark's
    rows."""
    parser.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "results" / f"{name}.json",
        help=f"file the rows are appended to (default: results/{name}.json)",
    )


def append_rows(path: Path, rows: list[dict]) -> None:
    """Add `rows` to the `{"rows": [...]}` file at `path` (made if missing, other keys kept),
    atomically."""
    payload = json.loads(path.read_text()) if path.is_file() else {}
    payload["rows"] = payload.get("rows", []) + rows
    write_json(path, payload)
