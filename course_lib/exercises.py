"""Self-checking exercises: value checks and code checks, each printing one friendly line and leaving a trace.

- :func:`check` compares a value the learner computed with the reference computed from the data.
- :func:`check_code` calls the learner's *function* on hidden cases (built by ``exercise_bank``, never shown in
  the notebook) and compares each result with the library or a reference. A failing case is named (input,
  expected, got) with a hint, never the solution. An exception inside the learner's code is that exercise's
  error; the notebook goes on. A stub (``None``, ``raise NotImplementedError()``, a body that returns ``None``)
  is "not answered".
- Every check leaves a machine-readable trace, which ``python -m course_lib grade`` reads from the executed
  notebook: in a Jupyter kernel the line is displayed with a second MIME type, :data:`TRACE_MIME`, holding
  ``{"exercise": name, "status": ...}``.

Not the answers: the hidden cases and references live in ``exercise_bank``; worked solutions are the notebooks'
``### BEGIN SOLUTION`` regions and ``notebooks/solutions/``, tested like the library.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import checks
from . import constants as C

TRACE_MIME = "application/vnd.course-kit.exercise+json"
STATUSES = ("passed", "failed", "not answered", "error")  # error: the learner's code raised
_ICON = {"passed": "✅", "failed": "❌", "not answered": "⏳", "error": "💥"}


@dataclass(frozen=True)
class Result:
    """What one check found: ``status`` is one of :data:`STATUSES`; ``message`` is the line the learner reads."""

    name: str
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == "passed"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and hasattr(ip, "kernel")


def report(result: Result) -> Result:
    """Show ``result`` (one line) and leave its trace for the grader; return it."""
    line = f"{_ICON[result.status]} {result.name}: {result.message}"
    if _in_kernel():
        from IPython.display import display

        display({"text/plain": line, TRACE_MIME: {"exercise": result.name, "status": result.status}}, raw=True)
    else:
        print(line)
    return result


# ---- value checks --------------------------------------------------------------------------------------
def check(name: str, answer, expected, *, tol: float | None = None, hint: str = "") -> bool:
    """Compare ``answer`` with ``expected`` and print one line; return True when it matches.

    ``None`` means "not attempted yet" and is not an error, so notebooks still run top to bottom.
    Numbers match within ``tol`` (relative, default exact for ints and 1e-6 for floats); collections match as sets
    when ``expected`` is a set, else element by element.
    """
    checks.text("name", name)
    if tol is not None:
        tol = checks.number("tol", tol, min=0, fix="a relative tolerance such as 1e-6")
    if not isinstance(hint, str):
        raise TypeError(f"hint must be a string, got {hint!r}")
    if expected is None or expected is Ellipsis:
        raise ValueError(f"{name}: expected is {expected!r}; the reference answer is missing (a bug in the notebook, "
                         "not in your answer)")
    if isinstance(expected, (float, np.floating)) and not math.isfinite(expected):
        raise ValueError(f"{name}: expected is {expected}; the reference answer could not be computed (a bug in the "
                         "notebook or empty data, not your answer)")
    if answer is None or answer is Ellipsis:
        return bool(report(Result(name, "not answered", "not answered yet — replace the None/... with your answer "
                                                        "and re-run the cell.")))
    if _matches(answer, expected, tol):
        return bool(report(Result(name, "passed", "correct!")))
    return bool(report(Result(name, "failed", f"not yet (you gave {_short(answer)})." + (f" Hint: {hint}" if hint else ""))))


def _matches(answer, expected, tol) -> bool:
    if isinstance(answer, (bool, np.bool_)) != isinstance(expected, (bool, np.bool_)):
        return False  # True is not the count 1
    if isinstance(expected, set):
        try:
            return set(answer) == expected
        except TypeError:
            return False
    if isinstance(expected, (float, np.floating)) or (tol is not None and isinstance(expected, (int, np.integer))):
        try:
            a = float(answer)
        except (TypeError, ValueError):
            return False
        return math.isfinite(a) and math.isclose(a, float(expected), rel_tol=tol if tol is not None else 1e-6, abs_tol=1e-9)
    if isinstance(expected, (list, tuple, np.ndarray)):
        try:
            return len(answer) == len(expected) and all(_matches(a, e, tol) for a, e in zip(answer, expected))
        except TypeError:
            return False
    if isinstance(expected, (int, np.integer)) and not isinstance(answer, bool):
        try:
            return float(answer) == float(expected)
        except (TypeError, ValueError):
            return False
    return answer == expected


def _short(x, limit: int = 60) -> str:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        s = np.array2string(x, precision=4, threshold=12, edgeitems=2, separator=", ").replace("\n", "")
    elif isinstance(x, (float, np.floating)):
        s = f"{float(x):.4g}"
    elif isinstance(x, (set, frozenset)):
        s = "{" + ", ".join(map(repr, sorted(x, key=repr))) + "}" if x else "set()"  # the same text every run
    else:
        s = repr(x)
    return s if len(s) < limit else s[:limit - 3] + "..."


# ---- code checks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One hidden case: the arguments, what a right answer gives, and how the learner sees the case when it fails."""

    label: str  # e.g. "batch of 3, rows padded to 5 tokens"
    args: tuple
    expected: object
    kwargs: dict = field(default_factory=dict)

    def shown(self) -> str:
        parts = [_short(a, 120) for a in self.args] + [f"{k}={_short(v, 120)}" for k, v in self.kwargs.items()]
        return f"{self.label}: ({', '.join(parts)})"


def check_code(name: str, fn, cases: list[Case], compare: Callable, *, hint: str = "") -> Result:
    """Call ``fn`` on every hidden case and compare each result with the case's expected one.

    ``compare(got, expected)`` returns ``None`` when ``got`` is right, else a short reason ("shape (3, 4), expected
    (3, 2)"). The first failing case is shown; the rest are not run. ``fn`` is called on copies of the arguments,
    so a function that changes its inputs cannot change the next case.
    """
    checks.text("name", name)
    if not cases:
        raise ValueError(f"{name}: no hidden cases (a bug in course_lib.exercise_bank, not in your answer)")
    if fn is None or fn is Ellipsis:
        return report(Result(name, "not answered", "not answered yet — write the function above and re-run its cell."))
    if not callable(fn):
        return report(Result(name, "failed", f"expected a function, got {_short(fn)}: define it with def and pass "
                                             "its name without calling it"))
    for n, case in enumerate(cases, 1):
        args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        try:
            got = fn(*args, **kwargs)
        except NotImplementedError:
            return report(Result(name, "not answered", "not answered yet — replace `raise NotImplementedError()` "
                                                       "with your code and re-run its cell."))
        except Exception as e:  # the learner's code raised: this exercise's error, the notebook goes on
            return report(Result(name, "error", f"your function raised {type(e).__name__}: {_short(str(e), 160)} "
                                                f"on hidden case {n} of {len(cases)}, {case.shown()}."
                                                + (f" Hint: {hint}" if hint else "")))
        if got is None and n == 1:
            return report(Result(name, "not answered", "your function returns None: write its body (and `return` "
                                                       "the result), then re-run its cell."))
        try:
            why = compare(got, case.expected)
        except Exception as e:  # an answer of the wrong kind (a list for an array, ...)
            why = f"could not compare your result ({type(e).__name__}: {_short(str(e), 100)})"
        if why is not None:
            return report(Result(name, "failed", f"hidden case {n} of {len(cases)}, {case.shown()}: expected "
                                                 f"{_short(case.expected, 120)}, got {_short(got, 120)} ({why})."
                                                 + (f" Hint: {hint}" if hint else "")))
    return report(Result(name, "passed", f"passed all {len(cases)} hidden cases."))


# ---- comparators for check_code ------------------------------------------------------------------------
def as_array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def close(atol: float = 1e-5, rtol: float = 1e-5):
    """A comparator: same shape, values equal within ``atol``/``rtol`` (NaN matches NaN)."""
    def compare(got, expected):
        g, e = as_array(got).astype(float), as_array(expected).astype(float)
        if g.shape != e.shape:
            return f"shape {g.shape}, expected {e.shape}"
        if not np.allclose(g, e, atol=atol, rtol=rtol, equal_nan=True):
            return f"largest difference {np.nanmax(np.abs(g - e)):.3g}" if np.isfinite(g).all() else "values differ"
        return None
    return compare


def equal(got, expected):
    """A comparator: exactly equal (arrays element by element, shapes too; lists in order)."""
    if isinstance(expected, np.ndarray):
        g = as_array(got)
        if g.shape != expected.shape:
            return f"shape {g.shape}, expected {expected.shape}"
        return None if np.array_equal(g, expected) else f"differs at {np.argwhere(g != expected)[0].tolist()}"
    if isinstance(expected, list):
        g = list(got)
        return None if g == expected else "different items or order"
    return None if got == expected else "not equal"


# ---- reference answers, computed from the data --------------------------------------------------------
def welcome_expected(ds) -> dict:
    """Reference answers for ``00_welcome``'s value exercises on any dataset."""
    from .data import Dataset

    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a course_lib.data.Dataset (e.g. load_dataset('shop')), got {type(ds).__name__}")
    if len(ds.interactions) == 0:
        raise ValueError(f"dataset {ds.name!r} has no interactions: the welcome exercises count them")
    per_user = ds.interactions.groupby(C.USER).size()
    per_item = ds.interactions.groupby(C.ITEM).size().sort_values(ascending=False)
    cat_of = ds.items.set_index(C.ITEM)[C.CATEGORY]
    users_per_cat = ds.interactions.assign(cat=ds.interactions[C.ITEM].map(cat_of)).groupby("cat")[C.USER].nunique()
    return {
        "torso": int(((per_user >= 5) & (per_user < 20)).sum()),
        "top_category_users": users_per_cat.sort_values(ascending=False, kind="stable").index[0],
        "top1pct_share": float(per_item.iloc[: max(1, len(ds.items) // 100)].sum() / len(ds.interactions)),
    }


def __getattr__(name: str):
    """``exercises.check_mean_pool`` and the other code checks live in ``exercise_bank`` (imported on first use)."""
    if name.startswith("check_") or name.startswith("cases_"):
        from . import exercise_bank

        if hasattr(exercise_bank, name):
            return getattr(exercise_bank, name)
    raise AttributeError(f"module 'course_lib.exercises' has no attribute {name!r}")
