"""The autograder: grade a submission (a folder holding `load_data.py` and `models.py`).

    python -m autograder grade SUBMISSION [--out results.json] [--public] [--only PATTERN]

Modules, in the order a grading uses them:

- `cli`: the command; runs pytest in-process on `checks/`, prints a table, writes results.json;
  `batch`: `grade-all`, a class at a time; `gradescope`: the Gradescope package; `doctor`:
  is this machine ready to grade untrusted code.
- `options`: the grading options, declared once for every command and the plugin;
  `results`: the grader's error, results.json in Gradescope's schema, the atomic write.
- `plugin`: the pytest plugin (options, `points`/`visibility` markers, header, fixtures, the
  outcome collector).
- `checks/public/`: episode, forward and loss checks (shipped to students);
  `checks/hidden/`: accuracy checks and their thresholds (never shipped).
- `sandbox`: how a child that runs student code is started, confined and killed
  (`run_child`, bubblewrap, limits); `cgroup`: its pids and memory cgroups, and the limits in
  force; `runner`: the child session (requests, replies, timeouts, the deadline);
  `child`: the harness inside it.
- `identity`: self-identifying images for the episode checks; `evaluation`: training in the
  child and meta-test accuracy; `feedback`: the message for every classic bug;
  `calibrate`: measure the reference over seeds to set thresholds.
"""
