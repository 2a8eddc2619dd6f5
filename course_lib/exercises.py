"""Self-checking exercises: a friendly pass/fail message for a learner's answer.

Not the answers: reference values are computed from the data when checked; worked solutions live in
``notebooks/solutions/`` and are tested like the library.
"""
from __future__ import annotations

import math

import numpy as np

from . import checks
from . import constants as C


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
        print(f"⏳ {name}: not answered yet — replace the None/... with your answer and re-run the cell.")
        return False
    ok = _matches(answer, expected, tol)
    if ok:
        print(f"✅ {name}: correct!")
    else:
        print(f"❌ {name}: not yet (you gave {_short(answer)})." + (f" Hint: {hint}" if hint else ""))
    return ok


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


def _short(x) -> str:
    s = repr(x)
    return s if len(s) < 60 else s[:57] + "..."


# ---- reference answers, computed from the data --------------------------------------------------------
def welcome_expected(ds) -> dict:
    """Reference answers for ``00_welcome``'s exercises on any dataset."""
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
