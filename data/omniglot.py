"""Process and cache the Omniglot drawings, and load them.

Letters used in shapes: C characters (1623 in all), D = 20 drawings per character, and 784 = 28*28
pixels per drawing, so the whole processed set is `[C, 20, 784]`.

The pipeline, each step atomic (a temporary file in the same folder, verified, then `os.replace`d,
so no half-written file is ever left in the cache):

1. `acquire_archive` (`data.archives`): `<cache>/raw/<name>.zip`, copied from `OMNIGLOT_SOURCE`
   or downloaded from `OMNIGLOT_URL` (default: the dataset's GitHub repository), and verified
   by its counts and the content digest of `data/SOURCES.md` (re-zipped copies still verify).
2. `build_cache`: every PNG decoded straight from the zip, resized to 28x28, inverted (ink 1.0,
   paper 0.0) and stored as uint8 in one compressed `<cache>/omniglot28.npz`.
3. `load_omniglot`: the float32 `[C, 20, 784]` array and the character names, building the cache
   on first use; with `raw=True` the cache's uint8 array itself (a quarter of the memory, for
   the grader), which `as_pixels` turns into exactly those float32 values, part by part.
"""

from __future__ import annotations

import io
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from .archives import (
    ARCHIVES,
    EXPECTED,
    OmniglotDataError,
    acquire_archive,
    atomic_file,
    cache_dir,
    cache_folder,
)

CACHE_FILE = "omniglot28.npz"
PROCESSING_VERSION = 1  # bump whenever the processing below changes: old caches are rebuilt
IMAGE_SIDE = 28
DRAWINGS = 20  # drawings per character, D
TOTAL_CHARACTERS = sum(info.characters for info in EXPECTED.values())  # 1623

__all__ = [
    "CACHE_FILE",
    "Omniglot",
    "OmniglotDataError",
    "as_pixels",
    "build_cache",
    "cache_dir",
    "load_omniglot",
    "prepare",
    "process_png",
]


@dataclass
class Omniglot:
    """The processed dataset: `images` float32 `[C, 20, 784]` in [0, 1] (ink 1.0, paper 0.0),
    or the cache's uint8 (ink 255) when loaded with `raw=True`, and `names`, the C character
    paths (`images_background/Latin/character01`), sorted."""

    images: np.ndarray  # float32 [C, 20, 784] (uint8 when raw)
    names: list[str]


# ---------------------------------------------------------------------------------------------
# Processing and cache


def _decode(png: bytes) -> np.ndarray:
    """One PNG -> uint8 `[784]`, ink 255, paper 0 (= round(255 * (1 - L / 255)))."""
    with Image.open(io.BytesIO(png)) as im:
        small = im.convert("L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.LANCZOS)
    return 255 - np.asarray(small, dtype=np.uint8).reshape(-1)  # [784]


def as_pixels(raw: np.ndarray) -> np.ndarray:
    """The cache's uint8 pixels (ink 255), any shape -> float32 in [0, 1], ink 1.0: the values
    every model reads. A float array is returned as it is."""
    if np.issubdtype(raw.dtype, np.floating):
        return raw
    pixels = raw.astype(np.float32)
    pixels /= 255.0
    return pixels


def process_png(png: bytes) -> np.ndarray:
    """One PNG file's bytes -> float32 `[784]` in [0, 1], ink 1.0: exactly the values
    `load_omniglot` holds for a drawing (the cached uint8 divided by 255). For images from
    outside the two archives, such as Lake's one-shot challenge runs."""
    return as_pixels(_decode(png))  # [784]


def build_cache(
    cache: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Acquire both archives and write `<cache>/omniglot28.npz`; return its path.

    The file holds `images` uint8 `[C, 20, 784]` (ink 255), `names` (unicode `[C]`, character
    paths sorted), `archives`, `digests` (content digests, in `ARCHIVES` order) and `version`
    (`PROCESSING_VERSION`). Written to a temporary file, then moved into place.
    """
    cache = cache_folder(cache)
    zips = {
        name: acquire_archive(name, cache, source=source, progress=progress) for name in ARCHIVES
    }
    digests = [EXPECTED[name].digest for name in ARCHIVES]  # acquire_archive verified them
    images = np.zeros((TOTAL_CHARACTERS, DRAWINGS, IMAGE_SIDE * IMAGE_SIDE), np.uint8)
    names: list[str] = []
    with tqdm(
        total=sum(EXPECTED[n].images for n in ARCHIVES),
        unit="img",
        desc="Processing Omniglot",
        disable=not progress,
    ) as bar:
        for name in ARCHIVES:  # "images_background" < "images_evaluation": paths stay sorted
            with zipfile.ZipFile(zips[name]) as zf:
                by_character: dict[str, list[str]] = {}
                for entry in zf.namelist():
                    if entry.endswith(".png"):
                        folder, _, _ = entry.rpartition("/")
                        by_character.setdefault(folder, []).append(entry)
                for character in sorted(by_character):
                    drawings = sorted(by_character[character])
                    if len(drawings) != DRAWINGS:
                        raise OmniglotDataError(
                            f"{zips[name]}: {character} holds {len(drawings)} drawings instead "
                            f"of {DRAWINGS}. Delete the cached zip and run `python -m data "
                            f"prepare` again with an official copy."
                        )
                    c = len(names)
                    for d, entry in enumerate(drawings):
                        images[c, d] = _decode(zf.read(entry))
                    names.append(character)
                    bar.update(len(drawings))
    target = cache / CACHE_FILE
    with atomic_file(target) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            images=images,
            names=np.array(names, dtype=str),
            archives=np.array(ARCHIVES, dtype=str),
            digests=np.array(digests, dtype=str),
            version=np.array(PROCESSING_VERSION),
        )
    return target


def _read_cache(path: Path) -> Omniglot | None:
    """The cached set, uint8 `[C, 20, 784]`, or None when the file is missing, unreadable or
    out of date."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["version"]) != PROCESSING_VERSION:
                return None
            if [str(d) for d in z["digests"]] != [EXPECTED[n].digest for n in ARCHIVES]:
                return None
            raw = z["images"]  # uint8 [C, 20, 784]
            names = [str(n) for n in z["names"]]
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt, never fatal
        return None
    if raw.shape != (TOTAL_CHARACTERS, DRAWINGS, IMAGE_SIDE * IMAGE_SIDE) or len(names) != len(raw):
        return None
    return Omniglot(images=raw, names=names)


def load_omniglot(
    cache: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    progress: bool = True,
    raw: bool = False,
) -> Omniglot:
    """Load the processed set, images float32 `[C, 20, 784]` (C = 1623) in [0, 1]; with
    `raw=True`, the cache's uint8 (ink 255, 25 MB instead of 100): see `as_pixels`.

    Builds the cache on first use (about 10-15 s) and loads it in well under a second afterwards.
    A corrupt, unreadable or outdated cache file is rebuilt.
    """
    path = cache_folder(cache) / CACHE_FILE
    data = _read_cache(path)
    if data is None:
        build_cache(cache, source=source, progress=progress)
        data = _read_cache(path)
        if data is None:
            raise OmniglotDataError(
                f"{path} was just built but cannot be read back. Check the disk (space, "
                f"permissions) or set OMNIGLOT_CACHE to another folder, then try again."
            )
    if not raw:
        data.images = as_pixels(data.images)  # [C, 20, 784] float32, ink 1.0
    return data


def prepare(
    cache: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    progress: bool = True,
) -> tuple[Path, Omniglot, float]:
    """Acquire and verify both archives, build (or reuse) the cache; return its path, the data
    and the seconds it took."""
    start = time.perf_counter()
    for name in ARCHIVES:
        acquire_archive(name, cache, source=source, progress=progress)
    data = load_omniglot(cache, source=source, progress=progress)
    return cache_folder(cache) / CACHE_FILE, data, time.perf_counter() - start
