"""Tests for the `data` package on the real Omniglot archives (no internet needed).

The happy paths use the real zips from OMNIGLOT_SOURCE; the download path is tested against a
local HTTP server (OMNIGLOT_URL). Shapes: C characters, 20 drawings, 784 pixels: [C, 20, 784].
"""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data
import data.omniglot as om
from data import (
    OmniglotDataError,
    acquire_archive,
    archives,
    load_omniglot,
    load_splits,
    verify_archive,
)
from data.splits import SPLITS, split_indices

from .conftest import REPO, omniglot_source


@pytest.fixture(scope="module")
def source() -> Path:
    folder = omniglot_source()
    if folder is None:
        pytest.skip("no Omniglot zips: set OMNIGLOT_SOURCE to the folder holding them")
    return folder


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No source from the environment: only what a test passes explicitly is used."""
    monkeypatch.delenv("OMNIGLOT_SOURCE", raising=False)
    monkeypatch.delenv("OMNIGLOT_URL", raising=False)


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline: None):
    """A local HTTP server over `tmp_path/www`; OMNIGLOT_URL points at it. Yields the folder."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    monkeypatch.setenv("OMNIGLOT_URL", f"http://127.0.0.1:{server.server_address[1]}")
    yield www
    server.shutdown()
    server.server_close()


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (105, 105), 1).save(buf, format="PNG")
    return buf.getvalue()


def fake_archive(path: Path, top: str = "images_background") -> Path:
    """A well-formed zip with the right top folder but one alphabet of 2 characters."""
    png = tiny_png()
    with zipfile.ZipFile(path, "w") as zf:
        for c in (1, 2):
            for d in range(1, 21):
                zf.writestr(f"{top}/Fake/character{c:02d}/{c:04d}_{d:02d}.png", png)
    return path


def corrupt_member(src: Path, dest: Path) -> Path:
    """A copy of `src` with 8 bytes flipped in the middle of one member's compressed data."""
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = [i for i in zf.infolist() if i.filename.endswith(".png")][len(zf.namelist()) // 3]
    middle = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    middle += info.compress_size // 2
    for i in range(middle, middle + 8):
        raw[i] ^= 0xFF
    dest.write_bytes(bytes(raw))
    return dest


# --------------------------------------------------------------------------------------------
# The processed set


def test_images_are_float32_1623_by_20_by_784_in_unit_range(omniglot):
    """Is the processed set float32 [1623, 20, 784] with values in [0, 1]?"""
    assert omniglot.images.shape == (1623, 20, 784), omniglot.images.shape
    assert omniglot.images.dtype == np.float32, omniglot.images.dtype
    assert omniglot.images.min() == 0.0 and omniglot.images.max() == 1.0


def test_ink_is_one_and_paper_is_zero(omniglot):
    """Is the image inverted, so that the (dominant) paper is 0 and the ink is 1?"""
    mean = float(omniglot.images.mean())
    assert 0.02 < mean < 0.3, f"mean pixel {mean}: paper should dominate at 0.0 (not inverted?)"
    corners = omniglot.images[:, :, [0, 27, 756, 783]]
    assert float(corners.mean()) < 0.01, "corners are paper and should be 0.0"


def test_names_are_sorted_unique_character_paths_of_both_archives(omniglot):
    """Are the 1623 names the sorted, unique character folders, 964 background + 659 eval?"""
    names = omniglot.names
    assert names == sorted(names) and len(set(names)) == len(names) == 1623
    assert sum(n.startswith("images_background/") for n in names) == 964
    assert sum(n.startswith("images_evaluation/") for n in names) == 659
    assert names[0] == "images_background/Alphabet_of_the_Magi/character01"
    assert all(len(n.split("/")) == 3 for n in names)


def test_second_load_reuses_the_cache_without_rebuilding(omniglot, monkeypatch):
    """Does a second load read the cache file instead of building it again?"""
    path = om.cache_dir() / om.CACHE_FILE
    mtime = path.stat().st_mtime_ns

    def no_build(*args, **kwargs):
        raise AssertionError("load_omniglot rebuilt a valid cache")

    monkeypatch.setattr(om, "build_cache", no_build)
    again = load_omniglot(progress=False)
    assert path.stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.images, omniglot.images)
    assert again.names == omniglot.names


@pytest.mark.parametrize("damage", ["garbage", "old version"])
def test_corrupt_or_outdated_cache_is_rebuilt(omniglot, tmp_path, monkeypatch, damage):
    """Is an unreadable or outdated cache file rebuilt instead of crashing?"""
    good = om.cache_dir() / om.CACHE_FILE
    bad = tmp_path / om.CACHE_FILE
    if damage == "garbage":
        bad.write_bytes(b"PK\x03\x04 not really a zip")
    else:
        np.savez_compressed(bad, version=np.array(om.PROCESSING_VERSION - 1))
    calls = []

    def fake_build(cache, **kwargs):
        calls.append(cache)
        shutil.copyfile(good, Path(cache) / om.CACHE_FILE)

    monkeypatch.setattr(om, "build_cache", fake_build)
    loaded = load_omniglot(tmp_path, progress=False)
    assert calls == [tmp_path]
    assert loaded.names == omniglot.names


def test_interrupted_build_leaves_no_cache_file(source, tmp_path, monkeypatch, offline):
    """Does a build interrupted half-way (Ctrl-C) leave no half-written cache behind?"""
    decoded = []
    real_decode = om._decode

    def decode_then_interrupt(png):
        decoded.append(1)
        if len(decoded) > 100:
            raise KeyboardInterrupt
        return real_decode(png)

    monkeypatch.setattr(om, "_decode", decode_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        om.build_cache(tmp_path, source=source, progress=False)
    assert not (tmp_path / om.CACHE_FILE).exists()
    assert [p.name for p in files_under(tmp_path)] == [
        "images_background.zip",
        "images_evaluation.zip",
    ]


# --------------------------------------------------------------------------------------------
# Splits


def test_default_split_has_1100_100_423_disjoint_characters_covering_all(splits, omniglot):
    """Are the default splits 1100/100/423 characters, disjoint, and together all 1623?"""
    sizes = {k: len(s.names) for k, s in splits.items()}
    assert sizes == {"train": 1100, "val": 100, "test": 423}
    for key, split in splits.items():
        assert split.images.shape == (sizes[key], 20, 784) and split.images.dtype == np.float32
    sets = [set(s.names) for s in splits.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set.union(*sets) == set(omniglot.names)


def test_split_images_belong_to_their_names(splits, omniglot):
    """Does row i of a split's images hold the drawings of the split's names[i]?"""
    index = {n: i for i, n in enumerate(omniglot.names)}
    for split in splits.values():
        rows = [index[n] for n in split.names]
        np.testing.assert_array_equal(split.images, omniglot.images[rows])


def test_split_is_identical_across_calls(splits):
    """Does loading the split again give exactly the same characters (fixed seed, sorted)?"""
    again = load_splits("default", progress=False)
    assert {k: s.names for k, s in again.items()} == {k: s.names for k, s in splits.items()}


def test_raw_split_is_the_cache_uint8_that_as_pixels_turns_into_the_float_split(splits):
    """Does `raw=True` (the grader's) hold uint8 pixels, a quarter of the bytes, which
    `as_pixels` turns into exactly the float32 split every model reads?"""
    raw = load_splits("default", progress=False, raw=True)
    for key, split in splits.items():
        assert raw[key].names == split.names and raw[key].images.dtype == np.uint8
        assert raw[key].images.nbytes * 4 == split.images.nbytes
        np.testing.assert_array_equal(data.as_pixels(raw[key].images), split.images)
    assert data.as_pixels(splits["val"].images) is splits["val"].images  # floats pass through


def test_default_split_follows_the_documented_recipe(splits, omniglot):
    """Is the default split the seed-0 permutation of the sorted names, cut 1100/100/423?"""
    order = np.random.default_rng(data.SPLIT_SEED).permutation(1623)
    expected = {"train": order[:1100], "val": order[1100:1200], "test": order[1200:]}
    for key, idx in expected.items():
        assert set(splits[key].names) == {omniglot.names[i] for i in idx}


def test_alphabet_split_holds_out_evaluation_and_keeps_alphabets_whole(omniglot):
    """Is "alphabet" meta-test all 659 evaluation characters, train/val split by alphabet?"""
    parts = split_indices(omniglot.names, "alphabet")
    names = {k: [omniglot.names[i] for i in idx] for k, idx in parts.items()}
    assert names["test"] == [n for n in omniglot.names if n.startswith("images_evaluation/")]
    alphabets = {k: {n.rsplit("/", 1)[0] for n in v} for k, v in names.items()}
    assert not alphabets["train"] & alphabets["val"]
    assert all(a.startswith("images_background/") for a in alphabets["train"] | alphabets["val"])
    assert len(names["val"]) >= 100 and len(names["train"]) + len(names["val"]) == 964


def test_unknown_split_name_lists_the_valid_names(omniglot):
    """Does an unknown split name raise ValueError naming the valid ones?"""
    with pytest.raises(ValueError, match="default, alphabet"):
        load_splits("by-alphabet", progress=False)
    assert data.split_names() == SPLITS == ("default", "alphabet")


# --------------------------------------------------------------------------------------------
# Verification and acquisition


@pytest.mark.parametrize("name", om.ARCHIVES)
def test_real_archives_verify_to_the_sources_md_digest(source, name):
    """Does each shared zip verify, returning the content digest of SOURCES.md?"""
    assert verify_archive(source / f"{name}.zip", name) == om.EXPECTED[name].digest


def test_download_from_server_gives_a_verified_archive(source, serve, tmp_path):
    """Does downloading a good archive over HTTP leave exactly the verified zip in the cache?"""
    shutil.copyfile(source / "images_evaluation.zip", serve / "images_evaluation.zip")
    cache = tmp_path / "cache"
    path = acquire_archive("images_evaluation", cache, progress=False)
    assert path == cache / "raw" / "images_evaluation.zip"
    assert files_under(cache) == [path]


def test_damaged_cached_zip_is_fetched_again(source, tmp_path, offline):
    """Is a truncated zip already in the cache replaced by a good copy?"""
    target = tmp_path / "raw" / "images_evaluation.zip"
    target.parent.mkdir()
    target.write_bytes((source / "images_evaluation.zip").read_bytes()[:1000])
    assert acquire_archive("images_evaluation", tmp_path, source=source, progress=False) == target
    assert verify_archive(target, "images_evaluation") == om.EXPECTED["images_evaluation"].digest


def _served_truncated(src: Path, www: Path) -> None:
    data_ = (src / "images_evaluation.zip").read_bytes()
    (www / "images_evaluation.zip").write_bytes(data_[: len(data_) // 2])


def _served_html(src: Path, www: Path) -> None:
    page = b"<!DOCTYPE html>\n<html><body>Sign in to continue</body></html>\n"
    (www / "images_evaluation.zip").write_bytes(page)


def _served_wrong_archive(src: Path, www: Path) -> None:
    # the evaluation zip where the background zip should be
    shutil.copyfile(src / "images_evaluation.zip", www / "images_background.zip")


def _served_corrupt(src: Path, www: Path) -> None:
    corrupt_member(src / "images_evaluation.zip", www / "images_evaluation.zip")


def _served_too_small(src: Path, www: Path) -> None:
    fake_archive(www / "images_evaluation.zip", top="images_evaluation")


def _served_other_content(src: Path, www: Path) -> None:
    """Right names and counts, one drawing replaced: only the content digest can tell."""
    with (
        zipfile.ZipFile(src / "images_evaluation.zip") as zin,
        zipfile.ZipFile(www / "images_evaluation.zip", "w", zipfile.ZIP_STORED) as zout,
    ):
        pngs = [n for n in zin.namelist() if n.endswith(".png")]
        for entry in pngs:
            zout.writestr(entry, tiny_png() if entry == pngs[42] else zin.read(entry))


BAD_DOWNLOADS = {
    # case: (what the server holds, which archive is asked for, expected message)
    "404": (lambda src, www: None, "images_evaluation", "HTTP 404"),
    "truncated": (_served_truncated, "images_evaluation", "not a complete zip archive"),
    "html": (_served_html, "images_evaluation", "is an HTML page"),
    "wrong archive": (
        _served_wrong_archive,
        "images_background",
        "it looks like images_evaluation.zip instead",
    ),
    "corrupt member": (_served_corrupt, "images_evaluation", "is corrupt"),
    "too few characters": (
        _served_too_small,
        "images_evaluation",
        "holds 1 alphabets, 2 characters and 40 PNGs",
    ),
    "other content": (_served_other_content, "images_evaluation", "wrong content digest"),
}


@pytest.mark.parametrize("case", list(BAD_DOWNLOADS))
def test_bad_download_raises_a_clear_error_and_leaves_nothing(source, serve, tmp_path, case):
    """Does each bad download raise OmniglotDataError saying why, leaving no file behind?"""
    prepare_server, name, message = BAD_DOWNLOADS[case]
    prepare_server(source, serve)
    cache = tmp_path / "cache"
    with pytest.raises(OmniglotDataError, match=message) as err:
        acquire_archive(name, cache, progress=False)
    assert "127.0.0.1" in str(err.value), "the message should say where the file came from"
    assert files_under(cache) == []


def test_unreachable_server_without_source_says_to_set_omniglot_source(
    tmp_path, monkeypatch, offline
):
    """With no network and no source, is the error about the network and OMNIGLOT_SOURCE?"""
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OMNIGLOT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(OmniglotDataError, match="could not reach the server") as err:
        load_omniglot(tmp_path, progress=False)
    assert "OMNIGLOT_SOURCE" in str(err.value)
    assert files_under(tmp_path) == []


def test_missing_file_in_source_names_the_path(tmp_path, monkeypatch, offline):
    """Does a source folder without the zip give an error naming the missing file?"""
    empty = tmp_path / "zips"
    empty.mkdir()
    monkeypatch.setenv("OMNIGLOT_SOURCE", str(empty))
    cache = tmp_path / "cache"
    with pytest.raises(OmniglotDataError, match=r"images_background\.zip does not exist") as err:
        load_omniglot(cache, progress=False)
    assert str(empty / "images_background.zip") in str(err.value)
    assert files_under(cache) == []


def test_error_message_is_one_paragraph(tmp_path):
    """Is an OmniglotDataError message a single paragraph (no newlines)?"""
    with pytest.raises(OmniglotDataError) as err:
        verify_archive(fake_archive(tmp_path / "x.zip"), "images_background")
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------------------------
# Lake's one-shot runs, all_runs.zip: acquired and checked like the image archives


RUNS_URL_PATH = "one-shot-classification/all_runs.zip"  # under the base URL, as on GitHub


def test_real_lake_runs_verify_to_the_sources_md_sha256(source):
    """Does the shared all_runs.zip verify, returning the sha256 of data/SOURCES.md?"""
    runs = source / "all_runs.zip"
    assert verify_archive(runs, data.LAKE_RUNS) == data.EXPECTED_RUNS.sha256


def test_lake_runs_are_copied_from_the_source_then_reused(source, tmp_path, offline):
    """Is all_runs.zip copied from the source folder into the cache, and reused afterwards?"""
    cache = tmp_path / "cache"
    path = acquire_archive(data.LAKE_RUNS, cache, source=source, progress=False)
    assert path == cache / "raw" / "all_runs.zip" and files_under(cache) == [path]
    assert path.read_bytes() == (source / "all_runs.zip").read_bytes()
    mtime = path.stat().st_mtime_ns
    assert acquire_archive(data.LAKE_RUNS, cache, source=tmp_path / "nowhere") == path
    assert path.stat().st_mtime_ns == mtime


def test_lake_runs_download_from_the_dataset_layout(source, serve, tmp_path):
    """Is all_runs.zip downloaded from `<base>/one-shot-classification/all_runs.zip`?"""
    (serve / RUNS_URL_PATH).parent.mkdir(parents=True)
    shutil.copyfile(source / "all_runs.zip", serve / RUNS_URL_PATH)
    cache = tmp_path / "cache"
    path = acquire_archive(data.LAKE_RUNS, cache, progress=False)
    assert files_under(cache) == [path] and path.name == "all_runs.zip"
    assert archives.archive_url(data.LAKE_RUNS) == f"{os.environ['OMNIGLOT_URL']}/{RUNS_URL_PATH}"
    assert data.DEFAULT_URL_BASE.endswith("brendenlake/omniglot/raw/master/python")


def _runs_rezipped(src: Path, dest: Path, keep=lambda name: True, replace=None) -> None:
    """all_runs.zip rebuilt with the members `keep` accepts, `replace` swapping one PNG."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for entry in zin.namelist():
            if keep(entry):
                zout.writestr(entry, tiny_png() if entry == replace else zin.read(entry))


def _runs_served(make):
    def prepare(src: Path, www: Path) -> None:
        target = www / RUNS_URL_PATH
        target.parent.mkdir(parents=True)
        make(src / "all_runs.zip", target)

    return prepare


BAD_RUNS = {
    # case: (how the served file is made from the real one, expected message)
    "404": (lambda src, dest: None, "HTTP 404"),
    "truncated": (
        lambda src, dest: dest.write_bytes(src.read_bytes()[: src.stat().st_size // 2]),
        "not a complete zip archive",
    ),
    "html": (
        lambda src, dest: dest.write_bytes(b"<!DOCTYPE html><html></html>"),
        "is an HTML page",
    ),
    "wrong archive": (
        lambda src, dest: shutil.copyfile(src.parent / "images_evaluation.zip", dest),
        "it looks like images_evaluation.zip instead",
    ),
    "corrupt member": (lambda src, dest: corrupt_member(src, dest), "is corrupt"),
    "a run missing": (
        lambda src, dest: _runs_rezipped(src, dest, keep=lambda n: not n.startswith("run20/")),
        "holds 19 runs and 760 PNGs",
    ),
    "other content": (
        lambda src, dest: _runs_rezipped(src, dest, replace="run07/test/item03.png"),
        "wrong sha256",
    ),
}


@pytest.mark.parametrize("case", list(BAD_RUNS))
def test_bad_lake_runs_download_raises_a_clear_error_and_leaves_nothing(
    source, serve, tmp_path, case
):
    """Does each bad all_runs.zip raise OmniglotDataError saying why, and leave no file?"""
    make, message = BAD_RUNS[case]
    _runs_served(make)(source, serve)
    cache = tmp_path / "cache"
    with pytest.raises(OmniglotDataError, match=message) as err:
        acquire_archive(data.LAKE_RUNS, cache, progress=False)
    assert "127.0.0.1" in str(err.value) and "\n" not in str(err.value)
    assert files_under(cache) == []


def test_missing_lake_runs_in_source_name_the_path(tmp_path, monkeypatch, offline):
    """Does a source folder without all_runs.zip give an error naming it, and load_runs too?"""
    from learners.lake import load_runs

    empty = tmp_path / "zips"
    empty.mkdir()
    monkeypatch.setenv("OMNIGLOT_SOURCE", str(empty))
    monkeypatch.setenv("OMNIGLOT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(OmniglotDataError, match=r"all_runs\.zip does not exist") as err:
        load_runs()
    assert str(empty / "all_runs.zip") in str(err.value) and "Lake" in str(err.value)
    assert files_under(tmp_path / "cache") == []


def test_sources_md_states_the_digests_and_counts_the_kit_checks():
    """Does data/SOURCES.md, which every data error cites, hold the digests, sha256 and counts
    that `data` checks?"""
    sources = (REPO / "data" / "SOURCES.md").read_text()
    for name, info in data.EXPECTED.items():
        assert f"| {name}.zip | {info.digest} |" in sources
        assert f"{info.alphabets} alphabets, {info.characters} characters, {info.images}" in sources
    assert f"| all_runs.zip | 352787 | {data.EXPECTED_RUNS.sha256} |" in sources
    assert archives.SOURCES == "data/SOURCES.md"


# --------------------------------------------------------------------------------------------
# Command line


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "data", *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, env=env, cwd=REPO)


def test_cli_help_lists_commands_and_defaults():
    """Does `python -m data --help` work, and does every option state its default?"""
    top = run_cli("--help")
    assert top.returncode == 0 and "prepare" in top.stdout and "verify" in top.stdout
    prepare = run_cli("prepare", "--help")
    assert prepare.returncode == 0
    assert prepare.stdout.count("(default:") == 3, prepare.stdout


def test_cli_verify_bad_file_prints_one_error_and_exits_1(tmp_path):
    """Does verifying a bad zip exit 1 with `error:` on stderr and no traceback?"""
    bad = tmp_path / "images_background.zip"
    bad.write_bytes(b"<html><body>404</body></html>")
    result = run_cli("verify", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "HTML page" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_verify_good_file_prints_ok_and_digest(source):
    """Does verifying a real zip print OK and the SOURCES.md digest?"""
    result = run_cli("verify", str(source / "images_evaluation.zip"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK ")
    assert om.EXPECTED["images_evaluation"].digest in result.stdout


def test_cli_verify_lake_runs_prints_ok_and_sha256(source):
    """Does `python -m data verify all_runs.zip` check Lake's runs and print their sha256?"""
    result = run_cli("verify", str(source / "all_runs.zip"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK ") and data.EXPECTED_RUNS.sha256 in result.stdout
