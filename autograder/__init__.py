"""The autograder: grade a submission (a folder holding `load_data.py` and `models.py`).

    python -m autograder grade SUBMISSION [--out results.json] [--public] [--only PATTERN]

Modules, in the order a grading uses them:

- `cli`: the command; runs pytest in-process on `checks/`, prints a table, writes results.json.
- `plugin`: the pytest plugin (options, `points`/`visibility` markers, header, fixtures, the
  outcome collector).
- `checks/public/`: episode, forward and loss checks (shipped to students);
  `checks/hidden/`: accuracy checks and their thresholds (never shipped).
- `runner`: the child process that runs student code (`run_child`, `ChildSession`);
  `child`: the harness inside it.
- `identity`: self-identifying images for the episode checks; `evaluation`: training in the
  child and meta-test accuracy; `feedback`: the message for every classic bug;
  `calibrate`: measure the reference over seeds to set thresholds.
"""
