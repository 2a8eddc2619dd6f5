"""Kernels for headless runs: which kernel runs a notebook, the environment it inherits, and the arguments it starts
with (no IPython history: a report run adds no session to the user's history database).

Not running notebooks (``report.py``) and not rendering them (``render.py``).
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

KERNEL_NAME = "course-kit"  # the notebooks' kernelspec; `make install` registers it in .venv and for the user
KERNEL_DISPLAY_NAME = "Python (course kit)"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # headless kernels draw figures into the notebook
# passed to every kernel a headless run starts: IPython keeps no history (no session row in ~/.ipython's
# history.sqlite per run, and no lock on it shared with the learner's own JupyterLab)
KERNEL_ARGUMENTS = ["--HistoryManager.enabled=False"]


def headless_env() -> None:
    """Kernels inherit this process's environment: offline models, no progress bars in stored outputs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["COURSE_PROGRESS"] = "0"
    os.environ["COURSE_HEADLESS"] = "1"  # widgets fall back to their static function (see widgets.live)


def _same_env(a: str, b: str) -> bool:
    """Two interpreter paths of one environment (``.venv/bin/python`` and ``.venv/bin/python3``). Symlinks are
    not followed: a venv's python links to the system one, so resolving them would make every clone look alike."""
    def folder(p):
        return os.path.normcase(os.path.dirname(os.path.abspath(p)))

    return os.path.isabs(a) and folder(a) == folder(b)


def kernel_name() -> str:
    """The kernel of *this* environment: ``course-kit`` when the spec Jupyter finds first runs this Python,
    else ``python3`` (ipykernel's built-in spec, which always runs the current Python)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if spec.argv and _same_env(spec.argv[0], sys.executable):
            return KERNEL_NAME
    except Exception:
        pass
    return "python3"


def user_kernel_dir() -> Path:
    """Where ``make install`` registers the user-level ``course-kit`` kernel (for a JupyterLab outside .venv)."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "kernels" / KERNEL_NAME


def remove_user_kernel() -> bool:
    """Remove the user-level kernel if it runs this environment's Python (``make clean``); keep another clone's."""
    import json
    import shutil

    folder = user_kernel_dir()
    try:
        argv = json.loads((folder / "kernel.json").read_text())["argv"]
    except (OSError, ValueError, KeyError):
        return False
    if not (argv and _same_env(argv[0], sys.executable)):
        return False
    shutil.rmtree(folder)
    print(f"removed the user kernel {KERNEL_NAME!r} ({folder}): it ran {argv[0]}")
    return True


@contextmanager
def inline_figures():
    """Kernels started inside get the inline backend. An ``MPLBACKEND`` of the caller's shell (``Agg`` on servers,
    and in the tests) would reach the kernel and silently drop every figure from the notebook and its report."""
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved


