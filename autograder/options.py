"""The grading options, declared once: `grade`, `grade-all`, the pytest plugin and the
Gradescope package all read them from `OPTIONS`.

`add_to(parser)` declares them on an argparse parser or a pytest option group (both take
`add_argument`-style keywords); `Grading.from_namespace` reads them back; `Grading.argv` turns
a `Grading` into the command-line options of `python -m autograder grade` (what `grade-all`
passes to each submission's grading) and `Grading.pytest_argv` into the plugin's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

STARTED = time.monotonic()  # when this grader process started: the deadline counts from here


@dataclass(frozen=True)
class Option:
    """One option: its flag, argparse keywords, and whether the pytest plugin takes it."""

    flag: str
    help: str
    type: type | None = None
    default: object = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # a store_true flag
    plugin: bool = True  # passed on to the pytest plugin

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")

    def keywords(self) -> dict:
        if self.switch:
            return {"action": "store_true", "default": False, "help": self.help}
        keywords = {"type": self.type, "default": self.default, "help": self.help}
        if self.choices:
            keywords["choices"] = self.choices
        return keywords


OPTIONS = (
    Option(
        "--device",
        "where the submission's MANN runs; auto takes CUDA when present (default: auto)",
        str,
        "auto",
        choices=("auto", "cpu", "cuda"),
    ),
    Option("--seed", "seed of the grader's tasks and training (default: 0)", int, 0),
    Option(
        "--threads",
        "torch CPU threads of each child process; one is fastest on a busy machine (default: 1)",
        int,
        1,
    ),
    Option(
        "--timeout-scale",
        "multiply every call's timeout, for slow machines (default: 1.0)",
        float,
        1.0,
    ),
    Option(
        "--jobs",
        "processes at a time: accuracy trainings for grade, submissions for grade-all; 0 sizes "
        "it from the CPU and memory limits in force, cgroup limits included (default: 0)",
        int,
        0,
    ),
    Option(
        "--accuracy-attempts",
        "fresh models an accuracy check may train, a new one only after a training stayed at chance "
        "(a plateau) (default: the hidden setting, 4)",
        int,
        None,
    ),
    Option(
        "--deadline",
        "seconds after which a grading stops: unfinished checks score 0 and results.json "
        "holds everything graded so far; for grade-all, per submission (default: none)",
        float,
        None,
    ),
    Option(
        "--hints",
        "how much of the fix the feedback shows, as the student files' hint level: steps "
        "(code) or outline (words only) (default: $AUTOGRADER_HINTS, else steps)",
        str,
        None,
        choices=("steps", "outline"),
        plugin=False,
    ),
    Option(
        "--only",
        "run only the checks matching this pytest -k expression, e.g. 'shuffled or loss' "
        "(default: all)",
        str,
        None,
        plugin=False,
    ),
    Option(
        "--public",
        "run only the public checks, the ones students have (default: off)",
        switch=True,
        plugin=False,
    ),
    Option(
        "--allow-unsandboxed",
        "grade even where the bubblewrap sandbox cannot start, the submission's code then "
        "reading what the grader can (grade-all and the Gradescope package refuse otherwise; "
        "grade on one folder always runs) (default: off)",
        switch=True,
        plugin=False,
    ),
)
BY_DEST = {option.dest: option for option in OPTIONS}


def add_to(parser, plugin: bool = False) -> None:
    """Declare the options on an argparse parser, or (`plugin`) on a pytest option group."""
    for option in OPTIONS:
        if plugin and not option.plugin:
            continue
        keywords = option.keywords()
        if plugin and option.dest == "device":
            keywords["choices"] = ("cpu", "cuda")  # resolved by the command before pytest
        (parser.addoption if plugin else parser.add_argument)(option.flag, **keywords)


@dataclass(frozen=True)
class Grading:
    """The resolved options of one grading run (or of each grading of a class)."""

    submission: Path | None = None
    device: str = "auto"
    seed: int = 0
    threads: int = 1
    timeout_scale: float = 1.0
    jobs: int = 0
    accuracy_attempts: int | None = None
    deadline: float | None = None
    hints: str | None = None
    only: str | None = None
    public: bool = False
    allow_unsandboxed: bool = False

    @classmethod
    def from_namespace(cls, namespace, **overrides) -> Grading:
        """Read the options from an argparse namespace or a pytest config (`getoption`)."""
        values = {}
        for field in fields(cls):
            if field.name == "submission" or field.name in overrides:
                continue
            if hasattr(namespace, "getoption"):
                if not BY_DEST[field.name].plugin:
                    continue
                values[field.name] = namespace.getoption(BY_DEST[field.name].flag)
            else:
                values[field.name] = getattr(namespace, field.name)
        return cls(**values, **overrides)

    def validate(self) -> None:
        """Raise ValueError for values no grading can run with."""
        if self.threads < 1 or self.jobs < 0 or self.timeout_scale <= 0:
            raise ValueError("--threads must be >= 1, --jobs >= 0, --timeout-scale > 0")
        if (self.accuracy_attempts or 1) < 1 or (self.deadline is not None and self.deadline <= 0):
            raise ValueError("--accuracy-attempts must be >= 1 and --deadline > 0")

    def argv(self, plugin: bool = False) -> list[str]:
        """These options on a command line (`grade`'s, or the plugin's with `plugin`)."""
        out = []
        for option in OPTIONS:
            value = getattr(self, option.dest)
            if (plugin and not option.plugin) or value is None or value is False:
                continue
            out += [option.flag] if option.switch else [option.flag, str(value)]
        return out

    def with_(self, **changes) -> Grading:
        return replace(self, **changes)

    def deadline_at(self) -> float | None:
        """The `time.monotonic()` at which this grading must stop (None: no deadline)."""
        return None if self.deadline is None else STARTED + self.deadline
