"""Acquire, verify, process and cache the Omniglot archives.

Letters used in shapes: C characters (1623 in all), D = 20 drawings per character, and 784 = 28*28
pixels per drawing, so the whole processed set is `[C, 20, 784]`.

The pipeline, each step atomic (a temporary file in the same folder, verified, then `os.replace`d,
so no half-written file is ever left in the cache):

1. `acquire_archive`: `<cache>/raw/<name>.zip`, copied from `OMNIGLOT_SOURCE` or downloaded from
   `OMNIGLOT_URL` (default: the dataset's GitHub repository), and checked by `verify_archive`.
2. `verify_archive`: a real zip, the right archive, the counts and the content digest of
   `SOURCES.md` (the digest ignores the zip container, so re-zipped copies still verify).
3. `build_cache`: every PNG decoded straight from the zip, resized to 28x28, inverted (ink 1.0,
   paper 0.0) and stored as uint8 in one compressed `<cache>/omniglot28.npz`.
4. `load_omniglot`: the float32 `[C, 20, 784]` array and the character names, building the cache
   on first use.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image
from tqdm import tqdm

ARCHIVES = ("images_background", "images_evaluation")
DEFAULT_URL_BASE = "https://github.com/brendenlake/omniglot/raw/master/python"
CACHE_FILE = "omniglot28.npz"
PROCESSING_VERSION = 1  # bump whenever the processing below changes: old caches are rebuilt
IMAGE_SIDE = 28
DRAWINGS = 20  # drawings per character, D
DOWNLOAD_TIMEOUT_S = 60


class ArchiveInfo(NamedTuple):
    """What `SOURCES.md` says an archive holds."""

    alphabets: int
    characters: int
    images: int
    digest: str  # content digest, see `content_digest`


EXPECTED: dict[str, ArchiveInfo] = {
    "images_background": ArchiveInfo(
        30, 964, 19280, "07356096b8076fcf915341f8715e94822249e2a4d5b999fd2d0f6cf9ebffebd5"
    ),
    "images_evaluation": ArchiveInfo(
        20, 659, 13180, "f5165eb5f20d18e13c6515650b69a42a2c0507506969d410ba5e4a1c572bd542"
    ),
}
TOTAL_CHARACTERS = sum(info.characters for info in EXPECTED.values())  # 1623

_FIX_HINT = (
    "Set OMNIGLOT_SOURCE=/folder/with/the/zips (a folder holding images_background.zip and "
    "images_evaluation.zip) or check your network, then run `python -m data prepare` again."
)


class OmniglotDataError(RuntimeError):
    """The Omniglot data could not be acquired, verified or read.

    The message is one paragraph: what happened, where the value came from, and what to do.
    """


@dataclass
class Omniglot:
    """The processed dataset: `images` float32 `[C, 20, 784]` in [0, 1] (ink 1.0, paper 0.0) and
    `names`, the C character paths (`images_background/Latin/character01`), sorted."""

    images: np.ndarray  # float32 [C, 20, 784]
    names: list[str]


def repo_root() -> Path:
    """The kit's root folder: the parent of this `data/` package."""
    return Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """`$OMNIGLOT_CACHE` if set, else `<repo root>/cache/omniglot`."""
    env = os.environ.get("OMNIGLOT_CACHE")
    return Path(env).expanduser().resolve() if env else repo_root() / "cache" / "omniglot"


def _cache(cache: str | os.PathLike | None) -> Path:
    return Path(cache).expanduser().resolve() if cache is not None else cache_dir()


def _source(source: str | os.PathLike | None) -> Path | None:
    if source is None:
        source = os.environ.get("OMNIGLOT_SOURCE") or None
    return Path(source).expanduser().resolve() if source is not None else None


def _check_name(name: str) -> None:
    if name not in ARCHIVES:
        raise ValueError(f"unknown Omniglot archive {name!r}; expected one of {ARCHIVES}")


@contextmanager
def _atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it replaces `target` atomically, on
    any failure (KeyboardInterrupt included) it is deleted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes files 0600; the cache is an ordinary shared file
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Verification


def content_digest(zf: zipfile.ZipFile) -> str:
    """The content digest of `SOURCES.md`: sha256 over the `.png` entries sorted by name of
    `name (UTF-8) + b"\\0" + sha256(png_bytes)` (raw 32 bytes). Reading checks every CRC."""
    digest = hashlib.sha256()
    for entry in sorted(n for n in zf.namelist() if n.endswith(".png")):
        digest.update(entry.encode("utf-8") + b"\0" + hashlib.sha256(zf.read(entry)).digest())
    return digest.hexdigest()


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head"))


def verify_archive(path: str | os.PathLike, name: str) -> str:
    """Check that `path` is the intact Omniglot archive `name` and return its content digest.

    Checks, in order: a complete zip (not HTML, not truncated), the top folder `name/`, the
    alphabet, character and PNG counts, every member's CRC, and the content digest of
    `SOURCES.md`. Raises `OmniglotDataError` saying which check failed and what to do.
    """
    _check_name(name)
    return _verify(Path(path), name, f"{path} (checked as {name}.zip)")


def _verify(path: Path, name: str, where: str) -> str:
    expected = EXPECTED[name]
    if not path.is_file():
        raise OmniglotDataError(f"{where} does not exist or is not a file. {_FIX_HINT}")
    if _looks_like_html(path):
        raise OmniglotDataError(
            f"{where} is an HTML page, not a zip archive: the server answered with a web page "
            f"(a login, error or redirect page) instead of the file. Delete it and download "
            f"the zip again, or {_FIX_HINT[0].lower()}{_FIX_HINT[1:]}"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            _check_layout(names, name, where)
            try:
                digest = content_digest(zf)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
                raise OmniglotDataError(
                    f"{where} is corrupt: a member failed to decompress or its CRC check "
                    f"({err}). The file was damaged in transit or on disk; delete it and fetch "
                    f"it again. {_FIX_HINT}"
                ) from err
    except zipfile.BadZipFile as err:
        raise OmniglotDataError(
            f"{where} is not a complete zip archive ({err}); it is most likely a truncated or "
            f"interrupted download. Delete it and fetch it again. {_FIX_HINT}"
        ) from err
    if digest != expected.digest:
        raise OmniglotDataError(
            f"{where} has the right layout and counts but the wrong content digest {digest} "
            f"(SOURCES.md expects {expected.digest}): some drawings differ from the official "
            f"Omniglot set. Use an unmodified copy of the archive. {_FIX_HINT}"
        )
    return digest


def _check_layout(names: list[str], name: str, where: str) -> None:
    expected = EXPECTED[name]
    tops = {n.split("/", 1)[0] for n in names if n}
    if tops != {name}:
        others = sorted(tops & set(ARCHIVES) - {name})
        looks = (
            f"it looks like {others[0]}.zip instead"
            if others
            else f"its top-level entries are {sorted(tops)[:5]}"
        )
        raise OmniglotDataError(
            f"{where} is the wrong archive: every entry should sit under {name}/, but {looks}. "
            f"Check which file you passed or which file sits at that path; the two Omniglot "
            f"archives are images_background.zip and images_evaluation.zip."
        )
    pngs = [n.split("/") for n in names if n.endswith(".png")]
    alphabets = {p[1] for p in pngs if len(p) == 4}
    characters = {(p[1], p[2]) for p in pngs if len(p) == 4}
    found = (len(alphabets), len(characters), len(pngs))
    wanted = (expected.alphabets, expected.characters, expected.images)
    if found != wanted:
        raise OmniglotDataError(
            f"{where} holds {found[0]} alphabets, {found[1]} characters and {found[2]} PNGs, "
            f"but SOURCES.md says {name}.zip holds {wanted[0]}, {wanted[1]} and {wanted[2]}: "
            f"it is an incomplete or different archive. Use the official archive. {_FIX_HINT}"
        )


# ---------------------------------------------------------------------------------------------
# Acquisition


def archive_url(name: str) -> str:
    """`<base>/<name>.zip`, base from `$OMNIGLOT_URL` or `DEFAULT_URL_BASE`."""
    base = os.environ.get("OMNIGLOT_URL") or DEFAULT_URL_BASE
    return f"{base.rstrip('/')}/{name}.zip"


def acquire_archive(
    name: str,
    cache: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Return the verified archive `<cache>/raw/<name>.zip`, fetching it if needed.

    A verified file already there is reused (a damaged one is replaced). Otherwise the zip is
    copied from `<source>/<name>.zip` (`source` defaults to `$OMNIGLOT_SOURCE`) or, with no
    source, downloaded from `archive_url(name)`. The new file is written to a temporary file,
    verified, then moved into place; on any failure nothing is left behind.
    """
    _check_name(name)
    target = _cache(cache) / "raw" / f"{name}.zip"
    if target.is_file():
        try:
            verify_archive(target, name)
            return target
        except OmniglotDataError:
            target.unlink()  # a damaged cached copy: fetch it again
    src = _source(source)
    fetch: Callable[[Path], None]
    if src is not None:
        origin = src / f"{name}.zip"
        if not origin.is_file():
            raise OmniglotDataError(
                f"{origin} does not exist: the source folder {src} (from "
                f"{'the source argument' if source is not None else '$OMNIGLOT_SOURCE'}) "
                f"should hold images_background.zip and images_evaluation.zip. Point "
                f"OMNIGLOT_SOURCE at the folder that holds both zips, or unset it to download them."
            )

        def fetch(tmp: Path) -> None:
            with open(origin, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
    else:
        origin = archive_url(name)

        def fetch(tmp: Path) -> None:
            _download(origin, tmp, progress=progress)

    try:
        with _atomic_file(target) as tmp:
            fetch(tmp)
            _verify(tmp, name, f"{origin} (fetched as {name}.zip)")
    except BaseException:
        _remove_empty(target.parent)
        raise
    return target


def _remove_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when empty
    except OSError:
        pass


def _download(url: str, dest: Path, *, progress: bool) -> None:
    hint = (
        "This machine may have no network access, or the server may be down. Set "
        "OMNIGLOT_SOURCE=/folder/with/the/zips to use local copies of images_background.zip "
        "and images_evaluation.zip, or set OMNIGLOT_URL to a mirror."
    )
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with (
                open(dest, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=Path(url).name,
                    disable=not progress,
                ) as bar,
            ):
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise OmniglotDataError(
            f"Downloading {url} failed: the server answered HTTP {err.code} {err.reason}. {hint}"
        ) from err
    except urllib.error.URLError as err:
        raise OmniglotDataError(
            f"Downloading {url} failed: could not reach the server ({err.reason}). {hint}"
        ) from err
    except (TimeoutError, ConnectionError, http.client.HTTPException) as err:
        raise OmniglotDataError(
            f"Downloading {url} failed part-way ({type(err).__name__}: {err}). {hint}"
        ) from err


# ---------------------------------------------------------------------------------------------
# Processing and cache


def _decode(png: bytes) -> np.ndarray:
    """One PNG -> uint8 `[784]`, ink 255, paper 0 (= round(255 * (1 - L / 255)))."""
    with Image.open(io.BytesIO(png)) as im:
        small = im.convert("L").resize((IMAGE_SIDE, IMAGE_SIDE), Image.LANCZOS)
    return 255 - np.asarray(small, dtype=np.uint8).reshape(-1)  # [784]


def process_png(png: bytes) -> np.ndarray:
    """One PNG file's bytes -> float32 `[784]` in [0, 1], ink 1.0: exactly the values
    `load_omniglot` holds for a drawing (the cached uint8 divided by 255). For images from
    outside the two archives, such as Lake's one-shot challenge runs."""
    return _decode(png).astype(np.float32) / 255.0  # [784]


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
    cache = _cache(cache)
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
    with _atomic_file(target) as tmp, open(tmp, "wb") as f:
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
    """The cached set, or None when the file is missing, unreadable or out of date."""
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
    images = raw.astype(np.float32)
    images /= 255.0  # [C, 20, 784], ink 1.0
    return Omniglot(images=images, names=names)


def load_omniglot(
    cache: str | os.PathLike | None = None,
    *,
    source: str | os.PathLike | None = None,
    progress: bool = True,
) -> Omniglot:
    """Load the processed set, images float32 `[C, 20, 784]` (C = 1623) in [0, 1].

    Builds the cache on first use (about 10-15 s) and loads it in well under a second afterwards.
    A corrupt, unreadable or outdated cache file is rebuilt.
    """
    path = _cache(cache) / CACHE_FILE
    data = _read_cache(path)
    if data is None:
        build_cache(cache, source=source, progress=progress)
        data = _read_cache(path)
        if data is None:
            raise OmniglotDataError(
                f"{path} was just built but cannot be read back. Check the disk (space, "
                f"permissions) or set OMNIGLOT_CACHE to another folder, then try again."
            )
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
    return _cache(cache) / CACHE_FILE, data, time.perf_counter() - start
