"""nbgrader configuration: the repository root is the nbgrader course folder.

    notebooks/blackbox/   source of the assignment "blackbox" (the student notebooks with their
                          solutions and hidden tests, and links to the released .py stubs)
    release/blackbox/     what `nbgrader generate_assignment blackbox` writes (gitignored)
    submitted/<student>/blackbox/, autograded/, feedback/, gradebook.db   nbgrader's own

`python -m publish` runs `nbgrader generate_assignment` with this file in a temporary course
folder and writes the student notebooks into `assignment/`, next to the `.py` stubs.
See the README section "notebooks" for the instructor's commands.
"""

import os

c = get_config()  # noqa: F821 (nbgrader defines get_config when it reads this file)

c.CourseDirectory.course_id = "blackbox-meta-learning"
c.CourseDirectory.source_directory = "notebooks"
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "figures"]

# The student's load_data.py and models.py are their work: autograde must grade them, never
# replace them by the stubs that the source folder releases.
c.Autograde.exclude_overwriting = {"blackbox": ["load_data.py", "models.py"]}

# Autograde checks that every cell runs and every test cell passes; accuracy is the grader's
# job (autograder/). The tiny budget keeps a notebook to about a minute on a CPU.
os.environ.setdefault("KIT_NOTEBOOK_BUDGET", "tiny")
# Autograde must run the student's own files (the notebook's folder), whatever the shell says.
os.environ.pop("KIT_CODE", None)
c.Execute.timeout = 900  # seconds per cell: a training cell trains several small runs
