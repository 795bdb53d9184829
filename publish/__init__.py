"""The release pipeline: everything the kit generates, from its single sources of truth.

`python -m publish` runs the steps of `publish.pipeline` in order (notebooks, stubs, student
notebooks, handout, package) and `python -m publish --check` fails when any generated file is
stale. The modules:

- `pipeline`: the ordered steps, `--check`'s comparison and the atomic writes (`files`);
- `notebooks/` (one module per notebook) and `cells` (the nbgrader cell helpers);
- `hints`: the two hint levels of the student files (`--hints steps|outline`);
- `stubs`: solutions/ -> assignment/ with nbgrader's ClearSolutions; `course`: nbgrader
  generate_assignment for the student notebooks;
- `handout` (from `templates/`) and `points` (what each check and notebook cell is worth);
- `package`: the student package `dist/blackbox-student/` and its zip, scanned by `leaks`.

It is the instructor's tool, not part of a training run or of grading: nothing that `kit/`,
`data/` or `autograder/` run imports it (`kit/release.py` only re-exports names of `stubs` for
`tests/test_grader.py`, until that test imports them from here).
"""
