"""Acquire and verify the Omniglot archives: the two image sets and Lake's one-shot runs.

Three archives, each described in `data/SOURCES.md` (provenance, sizes, digests):

- `images_background.zip` and `images_evaluation.zip`, the drawings: verified by their layout,
  counts and *content digest* (`content_digest`: the PNG files' names and bytes, whatever the
  zip container), so that a re-zipped copy with the same images is accepted;
- `all_runs.zip`, Lake et al.'s 20 one-shot classification runs: a byte-for-byte copy of the
  official file, verified by its layout (20 runs of 20 training and 20 test drawings and a
  `class_labels.txt`) and its sha256.

`acquire_archive(name)` returns the verified `<cache>/raw/<name>.zip`: reused when already
there and intact, else copied from `$OMNIGLOT_SOURCE` (a folder holding the zips) or downloaded
from the dataset's GitHub repository (`$OMNIGLOT_URL` overrides the base address). A new file
is written to a temporary file next to its target, verified, then `os.replace`d: no
half-written or unverified file is ever left in the cache.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

ARCHIVES = ("images_background", "images_evaluation")  # the drawings, in this order
LAKE_RUNS = "all_runs"  # Lake et al.'s one-shot classification runs
DEFAULT_URL_BASE = "https://github.com/brendenlake/omniglot/raw/master/python"
# Where each archive sits under the base address (the layout of the dataset's repository).
URL_PATHS = {
    "images_background": "images_background.zip",
    "images_evaluation": "images_evaluation.zip",
    LAKE_RUNS: "one-shot-classification/all_runs.zip",
}
DOWNLOAD_TIMEOUT_S = 60
SOURCES = "data/SOURCES.md"  # the provenance and digests every check below refers to


class ArchiveInfo(NamedTuple):
    """What `data/SOURCES.md` says an image archive holds."""

    alphabets: int
    characters: int
    images: int
    digest: str  # content digest, see `content_digest`


class RunsInfo(NamedTuple):
    """What `data/SOURCES.md` says `all_runs.zip` is."""

    runs: int  # each with `class_labels.txt`, `training/classNN.png`, `test/itemNN.png`
    ways: int  # drawings per folder of a run
    sha256: str  # of the file itself: it is a byte-for-byte copy of the official zip


EXPECTED: dict[str, ArchiveInfo] = {
    "images_background": ArchiveInfo(
        30, 964, 19280, "07356096b8076fcf915341f8715e94822249e2a4d5b999fd2d0f6cf9ebffebd5"
    ),
    "images_evaluation": ArchiveInfo(
        20, 659, 13180, "f5165eb5f20d18e13c6515650b69a42a2c0507506969d410ba5e4a1c572bd542"
    ),
}
EXPECTED_RUNS = RunsInfo(20, 20, "437c1eeab0af8484112e1b4cc0f3d541ec727f7c47b9b202da738af9dfd6c325")

_FIX_HINT = (
    "Set OMNIGLOT_SOURCE=/folder/with/the/zips (a folder holding images_background.zip and "
    "images_evaluation.zip) or check your network, then run `python -m data prepare` again."
)
_RUNS_HINT = (
    "Put Lake's all_runs.zip (brendenlake/omniglot, python/one-shot-classification/) in the "
    "folder OMNIGLOT_SOURCE names, or check your network, then try again."
)


class OmniglotDataError(RuntimeError):
    """The Omniglot data could not be acquired, verified or read.

    The message is one paragraph: what happened, where the value came from, and what to do.
    """


def repo_root() -> Path:
    """The kit's root folder: the parent of this `data/` package."""
    return Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """`$OMNIGLOT_CACHE` if set, else `<repo root>/cache/omniglot`."""
    env = os.environ.get("OMNIGLOT_CACHE")
    return Path(env).expanduser().resolve() if env else repo_root() / "cache" / "omniglot"


def cache_folder(cache: str | os.PathLike | None) -> Path:
    """`cache` resolved, or `cache_dir()` when it is None."""
    return Path(cache).expanduser().resolve() if cache is not None else cache_dir()


def _source(source: str | os.PathLike | None) -> Path | None:
    if source is None:
        source = os.environ.get("OMNIGLOT_SOURCE") or None
    return Path(source).expanduser().resolve() if source is not None else None


def _check_name(name: str) -> None:
    if name not in URL_PATHS:
        raise ValueError(f"unknown Omniglot archive {name!r}; expected one of {tuple(URL_PATHS)}")


def _hint(name: str) -> str:
    return _RUNS_HINT if name == LAKE_RUNS else _FIX_HINT


@contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
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
    """The content digest of `data/SOURCES.md`: sha256 over the `.png` entries sorted by name
    of `name (UTF-8) + b"\\0" + sha256(png_bytes)` (raw 32 bytes). Reading checks every CRC."""
    digest = hashlib.sha256()
    for entry in sorted(n for n in zf.namelist() if n.endswith(".png")):
        digest.update(entry.encode("utf-8") + b"\0" + hashlib.sha256(zf.read(entry)).digest())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head"))


def verify_archive(path: str | os.PathLike, name: str) -> str:
    """Check that `path` is the intact Omniglot archive `name` and return its digest.

    Checks, in order: a complete zip (not HTML, not truncated), the layout (the top folder
    `name/` and the alphabet, character and PNG counts; for `all_runs` the 20 runs' files),
    every member's CRC, and the digest of `data/SOURCES.md` (the content digest; for
    `all_runs` the file's sha256). Raises `OmniglotDataError` saying which check failed and
    what to do.
    """
    _check_name(name)
    return _verify(Path(path), name, f"{path} (checked as {name}.zip)")


def _verify(path: Path, name: str, where: str) -> str:
    if not path.is_file():
        raise OmniglotDataError(f"{where} does not exist or is not a file. {_hint(name)}")
    if _looks_like_html(path):
        hint = _hint(name)
        raise OmniglotDataError(
            f"{where} is an HTML page, not a zip archive: the server answered with a web page "
            f"(a login, error or redirect page) instead of the file. Delete it and download "
            f"the zip again, or {hint[0].lower()}{hint[1:]}"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            if name == LAKE_RUNS:
                _check_runs_layout(zf.namelist(), where)
            else:
                _check_layout(zf.namelist(), name, where)
            try:
                digest = _read_every_member(zf) if name == LAKE_RUNS else content_digest(zf)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
                raise OmniglotDataError(
                    f"{where} is corrupt: a member failed to decompress or its CRC check "
                    f"({err}). The file was damaged in transit or on disk; delete it and fetch "
                    f"it again. {_hint(name)}"
                ) from err
    except zipfile.BadZipFile as err:
        raise OmniglotDataError(
            f"{where} is not a complete zip archive ({err}); it is most likely a truncated or "
            f"interrupted download. Delete it and fetch it again. {_hint(name)}"
        ) from err
    if name == LAKE_RUNS:  # a byte-for-byte copy of the official file: its own sha256
        digest, expected, kind = file_sha256(path), EXPECTED_RUNS.sha256, "sha256"
    else:
        expected, kind = EXPECTED[name].digest, "content digest"
    if digest != expected:
        raise OmniglotDataError(
            f"{where} has the right layout and counts but the wrong {kind} {digest} "
            f"({SOURCES} expects {expected}): it differs from the official Omniglot "
            f"{name}.zip. Use an unmodified copy of the archive. {_hint(name)}"
        )
    return digest


def _read_every_member(zf: zipfile.ZipFile) -> None:
    """Read every member, so that each CRC is checked (`all_runs.zip`'s digest is the file's)."""
    for info in zf.infolist():
        zf.read(info)


def _check_layout(names: list[str], name: str, where: str) -> None:
    expected = EXPECTED[name]
    tops = {n.split("/", 1)[0] for n in names if n}
    if tops != {name}:
        raise OmniglotDataError(
            f"{where} is the wrong archive: every entry should sit under {name}/, but "
            f"{_looks_like(tops, name)}. Check which file you passed or which file sits at that "
            f"path; the two Omniglot archives are images_background.zip and images_evaluation.zip."
        )
    pngs = [n.split("/") for n in names if n.endswith(".png")]
    alphabets = {p[1] for p in pngs if len(p) == 4}
    characters = {(p[1], p[2]) for p in pngs if len(p) == 4}
    found = (len(alphabets), len(characters), len(pngs))
    wanted = (expected.alphabets, expected.characters, expected.images)
    if found != wanted:
        raise OmniglotDataError(
            f"{where} holds {found[0]} alphabets, {found[1]} characters and {found[2]} PNGs, "
            f"but {SOURCES} says {name}.zip holds {wanted[0]}, {wanted[1]} and {wanted[2]}: "
            f"it is an incomplete or different archive. Use the official archive. {_FIX_HINT}"
        )


def _looks_like(tops: set[str], name: str) -> str:
    """What a wrong archive looks like, from its top-level entries."""
    if {t for t in tops if re.fullmatch(r"run\d\d", t)} == tops and tops:
        return f"it looks like {LAKE_RUNS}.zip instead"
    others = sorted(tops & set(ARCHIVES) - {name})
    return (
        f"it looks like {others[0]}.zip instead"
        if others
        else f"its top-level entries are {sorted(tops)[:5]}"
    )


def runs_files(runs: int = EXPECTED_RUNS.runs, ways: int = EXPECTED_RUNS.ways) -> list[str]:
    """The files `all_runs.zip` must hold: per run, `class_labels.txt`, `ways` training and
    `ways` test drawings."""
    files = []
    for r in range(1, runs + 1):
        files.append(f"run{r:02d}/class_labels.txt")
        files += [f"run{r:02d}/training/class{n:02d}.png" for n in range(1, ways + 1)]
        files += [f"run{r:02d}/test/item{n:02d}.png" for n in range(1, ways + 1)]
    return files


def _check_runs_layout(names: list[str], where: str) -> None:
    tops = {n.split("/", 1)[0] for n in names if n}
    if not tops or not all(re.fullmatch(r"run\d\d", top) for top in tops):
        raise OmniglotDataError(
            f"{where} is the wrong archive: every entry should sit under a folder run01/ to "
            f"run20/, but {_looks_like(tops, LAKE_RUNS)}. Lake's one-shot runs are "
            f"all_runs.zip; the drawings are images_background.zip and images_evaluation.zip."
        )
    wanted = runs_files()
    missing = sorted(set(wanted) - set(names))
    if missing:
        found_runs = len({n.split("/", 1)[0] for n in names if n.endswith("class_labels.txt")})
        found_pngs = sum(n.endswith(".png") for n in names)
        raise OmniglotDataError(
            f"{where} holds {found_runs} runs and {found_pngs} PNGs, but {SOURCES} says "
            f"all_runs.zip holds {EXPECTED_RUNS.runs} runs of {EXPECTED_RUNS.ways} training and "
            f"{EXPECTED_RUNS.ways} test drawings ({len(wanted) - EXPECTED_RUNS.runs} PNGs); "
            f"{missing[0]} is missing. Use the official archive. {_RUNS_HINT}"
        )


# ---------------------------------------------------------------------------------------------
# Acquisition


def archive_url(name: str) -> str:
    """Where `name` is downloaded from: the base (`$OMNIGLOT_URL` or `DEFAULT_URL_BASE`), then
    the archive's path in the dataset's repository (`URL_PATHS`)."""
    _check_name(name)
    base = os.environ.get("OMNIGLOT_URL") or DEFAULT_URL_BASE
    return f"{base.rstrip('/')}/{URL_PATHS[name]}"


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
    target = cache_folder(cache) / "raw" / f"{name}.zip"
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
            holds = (
                "all_runs.zip (Lake's one-shot runs)"
                if name == LAKE_RUNS
                else "images_background.zip and images_evaluation.zip"
            )
            raise OmniglotDataError(
                f"{origin} does not exist: the source folder {src} (from "
                f"{'the source argument' if source is not None else '$OMNIGLOT_SOURCE'}) "
                f"should hold {holds}. Point OMNIGLOT_SOURCE at the folder that holds "
                f"{'it' if name == LAKE_RUNS else 'both zips'}, or unset it to download "
                f"{'it' if name == LAKE_RUNS else 'them'}."
            )

        def fetch(tmp: Path) -> None:
            with open(origin, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
    else:
        origin = archive_url(name)

        def fetch(tmp: Path) -> None:
            _download(origin, tmp, progress=progress)

    try:
        with atomic_file(target) as tmp:
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
        "OMNIGLOT_SOURCE=/folder/with/the/zips to use local copies of the Omniglot archives "
        "(images_background.zip, images_evaluation.zip; all_runs.zip for Lake's runs), or set "
        "OMNIGLOT_URL to a mirror."
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
