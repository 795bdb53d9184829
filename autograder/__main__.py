"""`python -m autograder grade | grade-all | gradescope`: see `autograder.cli`."""

import sys

from autograder.cli import main

sys.exit(main())
