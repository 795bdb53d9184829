"""The pytest plugin that runs the grader's public checks on a student's own machine.

Loaded with `-p check.plugin` by `python -m check`. The grader's plugin, trimmed to what the
public checks use: the markers `points(n)` and `visibility(name)`, the options
(`--submission`, `--device`, `--seed`, `--timeout-scale`), the fixtures `grading` and `child`
(a `check.session.ChildSession`), and `Outcomes`, which records each check's points, question
(its docstring), outcome and full message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from check.session import ChildError, ChildSession


@dataclass
class Grading:
    """The resolved options of one run."""

    submission: Path
    device: str
    seed: int
    threads: int
    timeout_scale: float


@dataclass
class Record:
    """The outcome of one check."""

    name: str
    points: float
    question: str  # the check's docstring: what it asks of the code
    status: str = "not run"  # passed | failed | error (a fault of the checks themselves)
    message: str = ""


@dataclass(eq=False)  # hashable: pytest keeps plugins in sets
class Outcomes:
    """Collects a `Record` per check; pass an instance to `pytest.main(plugins=[...])`."""

    records: dict[str, Record] = field(default_factory=dict)
    collection_errors: list[str] = field(default_factory=list)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            points = item.get_closest_marker("points")
            doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
            self.records[item.nodeid] = Record(
                name=check_name(item),
                points=float(points.args[0]) if points else 0.0,
                question=" ".join(doc.split()),
            )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        record = self.records.get(item.nodeid)
        if record is None:
            return report
        if call.excinfo is None:
            if call.when == "call" and record.status == "not run":
                record.status = "passed"
                record.message = dict(item.user_properties).get("output", "")
            return report
        error = call.excinfo.value
        if isinstance(error, ChildError):
            record.status, record.message = "failed", str(error)
        elif isinstance(error, pytest.fail.Exception):
            record.status, record.message = "failed", str(error.msg)
        else:
            record.status = "error"
            record.message = f"the check itself broke: {call.excinfo.exconly()}"
        # A child that raised keeps serving (the harness builds fresh objects for every call);
        # one that died or hung was stopped by `ChildSession`, and the next call starts anew.
        return report


def check_name(item: pytest.Item) -> str:
    """`test_query_row_is_shuffled[K2-N3]` -> `query row is shuffled [K2-N3]`."""
    name = getattr(item, "originalname", item.name).removeprefix("test_").replace("_", " ")
    params = re.search(r"\[(.*)\]$", item.name)
    return f"{name} [{params.group(1)}]" if params else name


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("check", "checking a submission")
    group.addoption("--submission", default=None, help="folder with load_data.py and models.py")
    group.addoption("--device", default="cpu", choices=("cpu", "cuda"), help="child's device")
    group.addoption("--seed", type=int, default=0, help="seed of the checks")
    group.addoption("--threads", type=int, default=1, help="torch threads in the child")
    group.addoption("--timeout-scale", type=float, default=1.0, help="multiplies timeouts")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): points a check is worth")
    config.addinivalue_line("markers", "visibility(name): Gradescope visibility")


@pytest.fixture(scope="session")
def grading(pytestconfig: pytest.Config) -> Grading:
    """The options of this run."""
    submission = pytestconfig.getoption("--submission")
    if submission is None:
        raise pytest.UsageError("--submission FOLDER is required")
    return Grading(
        submission=Path(submission).resolve(),
        device=pytestconfig.getoption("--device"),
        seed=pytestconfig.getoption("--seed"),
        threads=pytestconfig.getoption("--threads"),
        timeout_scale=pytestconfig.getoption("--timeout-scale"),
    )


@pytest.fixture(scope="session")
def child(grading: Grading):
    """A `ChildSession` running the submission; restarted after any failed check."""
    session = ChildSession(
        grading.submission,
        device=grading.device,
        threads=grading.threads,
        timeout_scale=grading.timeout_scale,
    )
    yield session
    session.stop()
