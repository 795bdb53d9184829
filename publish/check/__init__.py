"""The student's public checks: `python -m check [FOLDER]` in the student package.

This folder is a template: `python -m publish` ships it as `check/` in the package, next to
what it generates there from the grader's own code (never a hand copy):

    check/checks/test_*.py   the grader's public checks (autograder/checks/public/), with
                             `autograder.` imports pointed at `check.`
    check/feedback.py        autograder/feedback.py (the messages), verbatim
    check/identity.py        autograder/identity.py (the self-decoding images), verbatim
    check/child.py           autograder/child.py (the harness that runs the student's code)
    check/points.json        the hidden points still to be graded

So the checks, their points and their messages are the grader's. What differs is how the
student's code runs: in a plain child process on the student's own machine (`session`), with
no sandbox, since the code is the student's own; and the report (`report`) is written for a
student: one header line, every check's full message, one line per unimplemented function.
"""
