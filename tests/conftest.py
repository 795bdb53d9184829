"""Shared fixtures: the real Omniglot set, built once into the default cache and reused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from data import Omniglot, OmniglotDataError, Split, load_omniglot, load_splits

REPO = Path(__file__).resolve().parent.parent


def omniglot_source() -> Path | None:
    """The folder holding the two zips: `$OMNIGLOT_SOURCE` (a relative path is tried against the
    working directory, then the repo root), else `<repo>/../shared/omniglot`; None if absent."""
    env = os.environ.get("OMNIGLOT_SOURCE")
    candidates = [Path(env), REPO / env] if env else [REPO.parent / "shared" / "omniglot"]
    for folder in candidates:
        if (folder / "images_background.zip").is_file():
            return folder.resolve()
    return None


@pytest.fixture(scope="session")
def omniglot() -> Omniglot:
    """The whole processed set, images float32 [1623, 20, 784], from the default cache."""
    try:  # with no source and no cache, this downloads the archives (a fresh machine)
        return load_omniglot(source=omniglot_source(), progress=False)
    except OmniglotDataError as error:
        pytest.skip(
            f"no Omniglot data ({error}): set OMNIGLOT_SOURCE to the folder holding "
            "images_background.zip and images_evaluation.zip, or run `python -m data prepare`"
        )


@pytest.fixture(scope="session")
def splits(omniglot: Omniglot) -> dict[str, Split]:
    """The default split: "train", "val", "test" with images float32 [C, 20, 784]."""
    return load_splits("default", source=omniglot_source(), progress=False)


@pytest.fixture(scope="session")
def published() -> dict[str, bytes]:
    """Every file `python -m publish` generates at the course's hint level, in memory
    (repository path -> bytes); runs nbgrader and collects the grader's checks once."""
    from publish.pipeline import Settings, configured_level, generate

    return generate(Settings(hints=configured_level()))
