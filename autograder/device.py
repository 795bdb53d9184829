"""Which device a grading runs on, decided without importing torch in the grader's process.

The grader's process never imports torch (it would cost 218 MB of a 768 MB container): it asks
a short-lived interpreter instead, and only where an NVIDIA driver is present at all.
"""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

PROBE = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"


def nvidia_driver_present() -> bool:
    """Whether this machine shows an NVIDIA driver (`/proc/driver/nvidia` or `/dev/nvidia*`)."""
    return Path("/proc/driver/nvidia").exists() or bool(glob.glob("/dev/nvidia*"))


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA GPU here, asked of a separate interpreter (which exits
    before the grading starts); False at once where no NVIDIA driver is present."""
    if not nvidia_driver_present():
        return False
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def resolve_device(device: str) -> str:
    """`auto` picks CUDA when PyTorch sees it; asking for `cuda` without one is a ValueError."""
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise ValueError("--device cuda was asked for, but PyTorch sees no CUDA GPU here")
    return device
