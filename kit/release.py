"""Moved: the release pipeline is `python -m publish` (the package `publish/`).

Only `tests/test_grader.py` still imports these names from here; they are re-exported until
it imports them from `publish.stubs`, then this file goes.
"""

from publish.stubs import PUBLIC_CHECK_FILES, PUBLIC_CHECKS, RELEASE, stale_files

__all__ = ["PUBLIC_CHECKS", "PUBLIC_CHECK_FILES", "RELEASE", "stale_files"]
