"""The hidden cases and references of the notebooks' code exercises, one ``check_*`` function per exercise.

Each ``cases_*`` builds its cases deterministically (fixed seeds, hand-made edge cases), computes what a right
answer gives with the library (or a reference written here when the library has no such function), and
``check_*`` runs the learner's function on them through :func:`course_lib.exercises.check_code`. Not the
solutions: those are in the teacher's notebooks and ``notebooks/solutions/``; a hint names the idea, never the code.
"""
from .advanced import *  # noqa: F401,F403  07, 08, 10
from .foundations import *  # noqa: F401,F403  00-03
from .modelling import *  # noqa: F401,F403  04-06
from .reporting import *  # noqa: F401,F403  09
