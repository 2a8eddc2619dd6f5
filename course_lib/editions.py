"""The student edition: the course notebooks with the solution code taken out, as nbgrader would.

Solutions sit between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines (nbgrader's markers, so a teacher who
uses nbgrader takes the notebooks as they are). A region inside a function body becomes nbgrader's
``# YOUR CODE HERE`` / ``raise NotImplementedError()``; a region at the top level of a cell becomes
``name = None  # YOUR CODE HERE`` for each name it assigns, so the notebook still runs top to bottom and each
check says "not answered". Exercise cells (a solution region or a check) lose their outputs; ``solutions/`` is not
copied. Not grading (``grading.py``); the repository itself stays the teacher's edition.
"""
from __future__ import annotations

import ast
import re
import shutil
import uuid
from pathlib import Path

from .files import atomic_write

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
STUB = "# YOUR CODE HERE"
MARKER_FILE = ".course-kit-edition"  # says a folder is an edition this module wrote (safe to replace)
_CHECK_CALL = re.compile(r"\bexercises\.check\w*\(")


class EditionError(ValueError):
    """A notebook's solution markers do not pair up, or the output folder cannot be used (one line)."""


def _assigned_names(code: str) -> list[str]:
    """Top-level names a solution region binds (``x = ...``, ``a, b = ...``, ``def f``), in order."""
    try:
        tree = ast.parse(code)
    except SyntaxError as e:
        raise EditionError(f"a solution region is not valid Python on its own ({e.msg}, line {e.lineno})") from None
    names = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        for t in targets:
            names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.append(node.name)
    return list(dict.fromkeys(names))


def _stub(region: list[str], indent: str) -> list[str]:
    if indent:  # inside a function: exactly nbgrader's replacement
        return [f"{indent}{STUB}", f"{indent}raise NotImplementedError()"]
    names = _assigned_names("\n".join(region))
    return [f"{n} = None  {STUB}" for n in names] or [STUB]


def strip_solutions(source: str, where: str = "cell") -> str:
    """``source`` with every solution region replaced by its stub (see the module docstring)."""
    out, region, indent = [], None, ""
    for n, line in enumerate(source.split("\n"), 1):
        mark = line.strip()
        if mark == BEGIN:
            if region is not None:
                raise EditionError(f"{where}, line {n}: {BEGIN} inside another solution region; close the first "
                                   f"with {END}")
            region, indent = [], line[:len(line) - len(line.lstrip())]
        elif mark == END:
            if region is None:
                raise EditionError(f"{where}, line {n}: {END} without a {BEGIN} before it")
            out += _stub([r[len(indent):] if r.startswith(indent) else r for r in region], indent)
            region = None
        elif region is not None:
            region.append(line)
        else:
            out.append(line)
    if region is not None:
        raise EditionError(f"{where}: {BEGIN} is never closed; add {END} after the solution")
    return "\n".join(out)


def is_exercise_cell(cell) -> bool:
    return cell.cell_type == "code" and (BEGIN in cell.source or bool(_CHECK_CALL.search(cell.source)))


def student_notebook(nb):
    """A copy of ``nb`` (an nbformat notebook) with solutions stripped and exercise cells' outputs cleared."""
    import copy

    nb = copy.deepcopy(nb)
    for k, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        exercise = is_exercise_cell(cell)
        cell.source = strip_solutions(cell.source, where=f"cell {k} ({cell.get('id', '?')})")
        if exercise:
            cell.outputs, cell.execution_count = [], None
    return nb


def write_student_edition(out, src=None) -> list[Path]:
    """Write the student edition of every course notebook in ``src`` (default: the kit's ``notebooks/``) into
    ``out``; return the written paths. ``out`` must be new, empty, or an edition written before (replaced whole)."""
    import nbformat

    from .report import NOTEBOOK_DIR, list_notebooks

    src = Path(src) if src is not None else NOTEBOOK_DIR
    out = Path(out)
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise EditionError(f"out must be outside the teacher's notebooks ({src}), got {out}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER_FILE).exists())):
        raise EditionError(f"out {out} exists and is not an edition written before; give a new or empty folder")
    stage = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    stage.mkdir(parents=True)
    try:
        for path in list_notebooks(src):
            nb = student_notebook(nbformat.read(str(path), as_version=4))
            atomic_write(stage / path.name, nbformat.writes(nb) + "\n")
        atomic_write(stage / MARKER_FILE, "student edition written by python -m course_lib edition student\n")
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return sorted(out.glob("*.ipynb"))
