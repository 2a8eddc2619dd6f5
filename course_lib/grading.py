"""Grading a workshop: run every learner's submitted notebooks headless and collect their exercise results.

``SUBMISSIONS/<learner>/<notebook>.ipynb`` is executed offline in a fresh kernel, with a time limit per notebook
and errors allowed (a broken cell does not hide the checks after it). Each check leaves a trace in its output
(``exercises.TRACE_MIME``); one CSV row per learner, notebook and exercise says passed / failed / not answered /
error. The exercises expected of a notebook are the checks of the teacher's notebook of the same name plus any
check a submission ran; one a submission never reached (timeout, a cell that kills the kernel) is an error. Not the
checks themselves (``exercises``, ``exercise_bank``) and not the student edition (``editions``).
"""
from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

from .exercises import STATUSES, TRACE_MIME
from .files import atomic_write

COLUMNS = ("learner", "notebook", "exercise", "status", "detail")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "COURSE_HEADLESS": "1"}


class GradingError(ValueError):
    """The submissions folder or an option cannot be used (one line)."""


def traces(nb) -> list[dict]:
    """The exercise traces in an executed notebook's outputs, in order (a check run twice: its last result)."""
    found = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            t = out.get("data", {}).get(TRACE_MIME) if out.get("output_type") in ("display_data", "execute_result") else None
            if isinstance(t, dict) and t.get("status") in STATUSES and isinstance(t.get("exercise"), str):
                found.pop(t["exercise"], None)
                found[t["exercise"]] = t["status"]
    return [{"exercise": k, "status": v} for k, v in found.items()]


def run_notebook(path, timeout: float, kernel: str | None = None, cwd=None):
    """Execute the notebook at ``path`` in a fresh kernel; return ``(notebook, problem)``.

    ``timeout`` (seconds) bounds the whole notebook: each cell gets what is left. ``problem`` is ``None`` when the
    notebook ran to the end, else one line (did not open, timed out, the kernel died). Cell errors do not stop it.
    """
    import nbformat
    from nbclient import NotebookClient

    from .report import kernel_name

    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as e:  # not JSON, not a notebook: that learner's problem, not the grader's
        return None, f"could not open the notebook ({type(e).__name__}: {str(e)[:120]})"
    deadline = time.monotonic() + timeout
    client = NotebookClient(nb, kernel_name=kernel or kernel_name(), allow_errors=True, record_timing=False,
                            timeout_func=lambda cell: max(1, int(deadline - time.monotonic())),
                            resources={"metadata": {"path": str(cwd or Path(path).parent)}})
    env = {**os.environ, **OFFLINE_ENV}
    try:
        client.execute(env=env)
    except Exception as e:
        name = type(e).__name__
        if "Timeout" in name or time.monotonic() >= deadline:
            return nb, f"stopped after the time limit ({timeout:g} s per notebook)"
        return nb, f"stopped: {name}: {str(e).strip().splitlines()[0][:160] if str(e).strip() else ''}"
    return nb, None


def _expected(reference: Path | None, name: str) -> list[str]:
    import nbformat

    path = reference / name if reference is not None else None
    if path is None or not path.exists():
        return []
    return [t["exercise"] for t in traces(nbformat.read(str(path), as_version=4))]


def grade(submissions, out=None, *, timeout: float = 300, reference=None, cwd=None, kernel: str | None = None,
          echo=print) -> list[dict]:
    """Grade every ``submissions/<learner>/<notebook>.ipynb``; write the rows to ``out`` (CSV) when given.

    ``reference`` is the folder of the teacher's executed notebooks (default: the kit's ``notebooks/``), whose
    checks say which exercises a notebook has; ``cwd`` is where each notebook runs (default: the kit's
    ``notebooks/``, so relative paths resolve as in the course). Never stops on a broken submission: its rows say what happened.
    """
    from .report import NOTEBOOK_DIR

    root = Path(submissions)
    if not root.is_dir():
        raise GradingError(f"submissions must be a folder of <learner>/<notebook>.ipynb, got {submissions!r}")
    if not (isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0):
        raise GradingError(f"timeout must be a positive number of seconds per notebook, got {timeout!r}")
    reference = Path(reference) if reference is not None else NOTEBOOK_DIR
    learners = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not learners:
        raise GradingError(f"no learner folders in {root}: expected {root}/<learner>/<notebook>.ipynb")
    runs = {}
    for learner in learners:
        for path in sorted(learner.glob("*.ipynb")):
            t0 = time.perf_counter()
            nb, problem = run_notebook(path, timeout, kernel, cwd or NOTEBOOK_DIR)
            runs[learner.name, path.name] = (traces(nb) if nb is not None else [], problem)
            if echo:
                echo(f"  {learner.name}/{path.name}: {time.perf_counter() - t0:.1f} s"
                     + (f" ({problem})" if problem else ""))
    names = {}
    for (_, nb_name), (found, _) in runs.items():
        names.setdefault(nb_name, dict.fromkeys(_expected(reference, nb_name)))
        names[nb_name].update(dict.fromkeys(t["exercise"] for t in found))
    rows = []
    for (learner, nb_name), (found, problem) in runs.items():
        got = {t["exercise"]: t["status"] for t in found}
        for ex in names[nb_name]:
            if ex in got:
                rows.append(dict(learner=learner, notebook=nb_name, exercise=ex, status=got[ex], detail=""))
            else:
                rows.append(dict(learner=learner, notebook=nb_name, exercise=ex, status="error",
                                 detail=problem or "the check never ran (its cell was removed or changed)"))
        if not names[nb_name]:
            rows.append(dict(learner=learner, notebook=nb_name, exercise="", status="error",
                             detail=problem or "no exercise checks in this notebook"))
    if out is not None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        atomic_write(out, buf.getvalue())
    return rows
