"""Running notebooks headless: execute with papermill, render HTML with nbconvert, time each run.

Not notebook content: this module only runs notebooks and writes files; what they compute lives elsewhere.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
KERNEL_NAME = "course-kit"  # registered into .venv by `make`; falls back to "python3"
HEADLESS = {"INTERACTIVE": False}  # injected into every headless run


def _headless_env() -> None:
    """Kernels inherit this process's environment: offline models, no progress bars in stored outputs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["COURSE_PROGRESS"] = "0"


def list_notebooks(folder: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in order: ``NN_name.ipynb`` files of ``folder``."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {folder}")
    return found


def kernel_name() -> str:
    """The kernel of *this* environment: our registered one when it points here, else ``python3``."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        if Path(spec.argv[0]).resolve() == Path(sys.executable).resolve():
            return KERNEL_NAME
    except Exception:
        pass
    return "python3"


def execute(src: str | Path, dest: str | Path, parameters: dict | None = None, timeout: int = 900):
    """Execute ``src`` with papermill into ``dest``, with ``parameters`` injected; return the notebook."""
    import papermill as pm

    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    params = {**HEADLESS, **(parameters or {})}
    _headless_env()
    return pm.execute_notebook(
        str(src), str(dest), parameters=params, kernel_name=kernel_name(), cwd=str(src.parent),
        progress_bar=False, execution_timeout=timeout, report_mode=False,
    )


def to_html(notebook: str | Path, html: str | Path) -> Path:
    """Render an executed notebook to a standalone HTML file."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    html = Path(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    tmp = html.with_suffix(".html.tmp")
    tmp.write_text(body, encoding="utf-8")
    os.replace(tmp, html)
    return html


def run_notebooks(out: str | Path = "reports", parameters: dict | None = None, names=None,
                  folder: str | Path = NOTEBOOK_DIR) -> list[dict]:
    """Execute each notebook into ``out/NAME.ipynb`` and ``out/NAME.html``; return timings."""
    out = Path(out)
    results = []
    for nb in list_notebooks(folder):
        if names and nb.stem not in names:
            continue
        t0 = time.perf_counter()
        execute(nb, out / nb.name, parameters)
        to_html(out / nb.name, out / f"{nb.stem}.html")
        results.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  {nb.stem}: {results[-1]['seconds']} s -> {out / (nb.stem + '.html')}", flush=True)
    return results


def refresh_in_place(names=None, folder: str | Path = NOTEBOOK_DIR, timeout: int = 900) -> None:
    """Re-execute committed notebooks in place with their defaults (no papermill metadata), for commits."""
    import nbformat
    from nbclient import NotebookClient

    _headless_env()
    for nb_path in list_notebooks(folder):
        if names and nb_path.stem not in names:
            continue
        nb = nbformat.read(str(nb_path), as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name=kernel_name(), record_timing=False,
                       resources={"metadata": {"path": str(nb_path.parent)}}).execute()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        tmp = nb_path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, str(tmp))
        os.replace(tmp, nb_path)
        print(f"  {nb_path.stem}: {time.perf_counter() - t0:.1f} s", flush=True)
