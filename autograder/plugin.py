"""The pytest plugin that turns `autograder/checks/` into a grader.

Loaded with `-p autograder.plugin` by `python -m autograder grade`. It adds:

- the option group `autograder`: `--submission` and the grading options of
  `autograder.options` (declared there, once, for every command);
- the markers `points(n)` and `visibility(name)` (registered, so `--strict-markers` holds);
  every check must carry `points`;
- a report header with the seed, device, torch version and the data digests;
- the fixtures `grading` (the options), `child` (a `ChildSession` running the submission) and
  `splits` (the real Omniglot splits, loaded on first use, grader side only);
- `Outcomes`: a collector of one record per check (points, visibility, outcome, message).
  A `ChildError` (the submission raised, hung or exited) fails the check with its message; any
  other exception is a grader error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from autograder import runner
from autograder.options import Grading, add_to
from autograder.runner import ChildError, ChildSession
from autograder.sandbox import isolation

__all__ = ["Grading", "Outcomes", "Record", "keep_output"]

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


@dataclass
class Record:
    """The outcome of one check."""

    nodeid: str
    name: str
    points: float
    visibility: str
    status: str = "not run"  # passed | failed | error (a grader error)
    message: str = ""
    seconds: float = 0.0
    traceback: str = ""  # a grader error's traceback (shown with --verbose)


@dataclass(eq=False)  # hashable: pytest keeps plugins in sets
class Outcomes:
    """Collects a `Record` per check; pass an instance to `pytest.main(plugins=[...])`."""

    records: dict[str, Record] = field(default_factory=dict)
    header: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)  # the child's printed output, excerpts
    collection_errors: list[str] = field(default_factory=list)

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        self.header = report_header(config)
        return self.header

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        if not self.header:  # pytest skips `pytest_report_header` under -q
            self.header = report_header(config)
        for item in items:
            points = item.get_closest_marker("points")
            visibility = item.get_closest_marker("visibility")
            self.records[item.nodeid] = Record(
                nodeid=item.nodeid,
                name=check_name(item),
                points=float(points.args[0]) if points else 0.0,
                visibility=visibility.args[0] if visibility else "visible",
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem) -> bool | None:
        """Past the grading's deadline, a check is not run: it scores 0 and says why."""
        record = self.records.get(item.nodeid)
        if record is None or not runner.STATE.past_deadline():
            return None
        record.status, record.message = "failed", runner.STATE.deadline_message()
        return True

    def stop_unfinished(self) -> None:
        """Give every check that has not finished the deadline's verdict (the grading stops)."""
        for record in self.records.values():
            if record.status == "not run":
                record.status, record.message = "failed", runner.STATE.deadline_message()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        record = self.records.get(item.nodeid)
        if record is None:
            return report
        record.seconds += call.duration
        if call.when == "teardown" and runner.STATE.past_deadline():
            return report  # fixtures torn down with their work stopped: not the check's fault
        if call.excinfo is None:
            if call.when == "call" and record.status == "not run":
                record.status = "passed"
                record.message = dict(item.user_properties).get("output", "")
            return report
        error = call.excinfo.value
        if isinstance(error, ChildError):
            record.status, record.message = "failed", f"{error}"
        elif isinstance(error, pytest.fail.Exception):
            record.status, record.message = "failed", str(error.msg)
        else:
            record.status = "error"
            record.message = f"grader error: {call.excinfo.exconly().splitlines()[0]}"
            record.traceback = report.longreprtext
        if record.status != "passed":
            child = item.funcargs.get("child") if hasattr(item, "funcargs") else None
            if isinstance(child, ChildSession):
                child.stop()  # the next check starts from a fresh child
        return report


def check_name(item: pytest.Item) -> str:
    """`test_query_row_is_shuffled[K2-N3]` -> `query row is shuffled [K2-N3]`."""
    name = getattr(item, "originalname", item.name).removeprefix("test_").replace("_", " ")
    params = re.search(r"\[(.*)\]$", item.name)
    return f"{name} [{params.group(1)}]" if params else name


def report_header(config: pytest.Config) -> list[str]:
    from importlib.metadata import version  # not `import torch`: this process never loads it

    from data import ARCHIVES, EXPECTED

    grading = options(config)
    digests = ", ".join(f"{name}:{EXPECTED[name].digest[:12]}" for name in ARCHIVES)
    return [
        f"autograder: submission {grading.submission}",
        (
            f"seed {grading.seed}, device {grading.device}, torch {version('torch')}, "
            f"{grading.threads} child thread(s)"
        ),
        f"data digests {digests}",
        f"isolation: {isolation()}",
        f"{grading.jobs} training(s) at a time"
        + (f", deadline {grading.deadline:.0f} s" if grading.deadline else ""),
    ]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("autograder", "grading a submission")
    group.addoption("--submission", default=None, help="folder with load_data.py and models.py")
    add_to(group, plugin=True)


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--submission", None) is not None:
        grading = options(config)
        runner.STATE.deadline, runner.STATE.deadline_at = grading.deadline, grading.deadline_at()
        runner.STATE.children = grading.jobs
    config.addinivalue_line("markers", "points(n): points a check is worth")
    config.addinivalue_line(
        "markers", f"visibility(name): Gradescope visibility, one of {', '.join(VISIBILITIES)}"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        points = item.get_closest_marker("points")
        visibility = item.get_closest_marker("visibility")
        if points is None:
            raise pytest.UsageError(f"{item.nodeid} has no points marker")
        if visibility is not None and visibility.args[0] not in VISIBILITIES:
            raise pytest.UsageError(f"{item.nodeid}: unknown visibility {visibility.args[0]!r}")


def options(config: pytest.Config) -> Grading:
    submission = config.getoption("--submission")
    if submission is None:
        raise pytest.UsageError("--submission FOLDER is required")
    grading = Grading.from_namespace(config, submission=Path(submission).resolve())
    if grading.device == "auto":
        grading = grading.with_(device="cpu")
    if grading.jobs == 0:
        grading = grading.with_(jobs=auto_jobs(grading.device))
    return grading


def auto_jobs(device: str) -> int:
    """Accuracy trainings at a time where --jobs is 0: one per CPU the limits in force allow
    (cgroup quota included), no more than the memory left after the grader holds (each
    training child needs about `TRAINING_BYTES`), at least one."""
    from autograder import cgroup, sandbox

    cpus = int(cgroup.cpu_limit())
    memory = cgroup.memory_limit()
    by_memory = cpus if memory is None else (memory - sandbox.GRADER_RESERVE) // TRAINING_BYTES
    return max(1, min(cpus, by_memory, 4))


TRAINING_BYTES = 420 << 20  # a training child: 275 MB measured; K=2 predictions need more


@pytest.fixture(scope="session")
def grading(pytestconfig: pytest.Config) -> Grading:
    """The options of this grading run."""
    return options(pytestconfig)


@pytest.fixture(scope="session")
def child(grading: Grading, pytestconfig: pytest.Config):
    """A `ChildSession` running the submission; restarted after any failed check."""
    session = ChildSession(
        grading.submission,
        device=grading.device,
        threads=grading.threads,
        timeout_scale=grading.timeout_scale,
    )
    _SHARED.append(session)
    yield session
    _SHARED.remove(session)
    session.stop()
    keep_output(pytestconfig, "\n".join(session.outputs))


_SHARED: list[ChildSession] = []  # the `child` fixture's session, while it exists


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A check that does not use the shared child (the accuracy checks start their own) first
    stops it: an idle child holds about 200 MB (torch), which a 768 MB container cannot spare
    next to a training. It restarts on the next call that needs it."""
    if "child" not in getattr(item, "fixturenames", ()):
        for session in _SHARED:
            if session.process is not None:
                session.stop()


def keep_output(config: pytest.Config, excerpt: str) -> None:
    """Add an excerpt of what the submission printed to the results' output."""
    if not excerpt.strip():
        return
    for plugin in config.pluginmanager.get_plugins():
        if isinstance(plugin, Outcomes):
            plugin.outputs.append(excerpt)


@pytest.fixture(scope="session")
def splits():
    """The default Omniglot split as the cache's uint8 pixels (grader side only: the child
    never receives meta-test; `autograder.evaluation` converts what a child needs)."""
    from data import load_splits

    return load_splits("default", progress=False, raw=True)
