"""Running notebooks headless: execute with papermill, render HTML with nbconvert, time each run.

Not notebook content: this module only runs notebooks and writes files; what they compute lives elsewhere.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
REPORT_NOTEBOOK = NOTEBOOK_DIR / "07_report.ipynb"
KERNEL_NAME = "course-kit"  # the notebooks' kernelspec; `make install` registers it in .venv and for the user
KERNEL_DISPLAY_NAME = "Python (course kit)"
HEADLESS = {"INTERACTIVE": False}  # injected into every headless run


def _headless_env() -> None:
    """Kernels inherit this process's environment: offline models, no progress bars in stored outputs."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["COURSE_PROGRESS"] = "0"
    os.environ["COURSE_HEADLESS"] = "1"  # widgets fall back to their static function (see widgets.live)


def list_notebooks(folder: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in order: ``NN_name.ipynb`` files of ``folder``."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no notebooks named NN_*.ipynb in {folder}")
    return found


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
    """Execute each notebook into ``out/NAME.ipynb`` and ``out/NAME.html``; return timings.

    The report notebook (07) writes its ``metrics.json`` into ``out/shop``.
    """
    out = Path(out)
    results = []
    for nb in list_notebooks(folder):
        if names and nb.stem not in names:
            continue
        t0 = time.perf_counter()
        params = dict(parameters or {})
        if nb.name == REPORT_NOTEBOOK.name:
            params.setdefault("OUTPUT_DIR", str((out / "shop").resolve()))
        execute(nb, out / nb.name, params)
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
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
        nb.metadata.pop("widgets", None)  # widget state saved by JupyterLab belongs to a learner's copy, not the kit
        tmp = nb_path.with_suffix(".ipynb.tmp")
        nbformat.write(nb, str(tmp))
        os.replace(tmp, nb_path)
        print(f"  {nb_path.stem}: {time.perf_counter() - t0:.1f} s", flush=True)


# ---------------------------------------------------------------------------------------------------------
# python -m course_lib report
# ---------------------------------------------------------------------------------------------------------
class ReportParameterError(ValueError):
    """A report parameter is unknown, of the wrong type, or out of range (said in one line)."""


def notebook_parameters(path: str | Path = REPORT_NOTEBOOK) -> dict:
    """``name -> {"type", "default", "help"}`` from the notebook's ``parameters`` cell (as papermill reads it)."""
    import papermill as pm

    spec = pm.inspect_notebook(str(path))
    return {k: {"type": v["inferred_type_name"], "default": v["default"], "help": v["help"]} for k, v in spec.items()}


def parse_param(text: str) -> tuple[str, object]:
    """``"NAME=VALUE"`` -> (NAME, value); the value is a Python literal if it parses as one, else a string."""
    import ast

    if "=" not in text:
        raise ReportParameterError(f"--param {text!r}: expected NAME=VALUE, e.g. --param K=20")
    name, raw = text.split("=", 1)
    name, raw = name.strip(), raw.strip()
    if raw.lower() in ("true", "false"):
        return name, raw.lower() == "true"
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return name, raw


def validate_params(params: dict, spec: dict | None = None) -> dict:
    """Check names, types and ranges before anything runs; return the parameters with numbers coerced."""
    from .data import DATASETS
    from .encode import POOLINGS

    spec = spec or notebook_parameters()
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ReportParameterError(f"unknown parameter(s) {unknown}; valid: {', '.join(sorted(spec))}")
    out = {}
    for name, value in params.items():
        kind = spec[name]["type"]
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ReportParameterError(f"{name} must be an integer, got {value!r}")
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ReportParameterError(f"{name} must be a number, got {value!r}")
            value = float(value)
        elif kind == "bool" and not isinstance(value, bool):
            raise ReportParameterError(f"{name} must be True or False, got {value!r}")
        elif kind == "str" and not isinstance(value, str):
            value = str(value)
        out[name] = value
    checks = [
        ("DATASET", lambda v: str(v).lower() in DATASETS, f"must be one of {DATASETS}"),
        ("POOLING", lambda v: v in POOLINGS, f"must be one of {POOLINGS}"),
        ("K", lambda v: v > 0, "must be > 0"),
        ("TEST_FRAC", lambda v: 0 < v < 1, "must be between 0 and 1 (exclusive)"),
        ("ALPHA", lambda v: 0 <= v <= 1, "must be between 0 and 1"),
        ("HALF_LIFE_DAYS", lambda v: v > 0, "must be > 0"),
    ]
    for name, ok, what in checks:
        if name in out and not ok(out[name]):
            raise ReportParameterError(f"{name} {what}, got {out[name]!r}")
    if out.get("DATA_DIR") is not None:
        d = Path(str(out["DATA_DIR"])).expanduser()
        if not d.is_dir():
            raise ReportParameterError(f"data dir {d} does not exist; point --data-dir at the dataset's folder")
        out["DATA_DIR"] = str(d.resolve())
        if str(out.get("DATASET", "shop")).lower().startswith("movielens"):
            if not ((d / "u.data").exists() or (d / "ml-100k" / "u.data").exists()):
                raise ReportParameterError(f"data dir {d} has no u.data: it should hold u.data, u.item and u.user")
    return out


def run_report(out: str | Path, dataset: str = "shop", data_dir: str | None = None, params: dict | None = None,
               timeout: int = 1800) -> dict:
    """Validate, then execute the report notebook into ``out``: ``report.ipynb``, ``report.html``, ``metrics.json``."""
    out = Path(out).expanduser().resolve()
    merged = {"DATASET": dataset, **(params or {})}
    if data_dir is not None:
        merged["DATA_DIR"] = data_dir
    merged["OUTPUT_DIR"] = str(out)
    merged = validate_params(merged)
    t0 = time.perf_counter()
    execute(REPORT_NOTEBOOK, out / "report.ipynb", merged, timeout=timeout)
    html = to_html(out / "report.ipynb", out / "report.html")
    metrics = out / "metrics.json"
    if not metrics.exists():
        raise RuntimeError(f"the report ran but wrote no {metrics}")
    return {"notebook": out / "report.ipynb", "html": html, "metrics": metrics,
            "seconds": round(time.perf_counter() - t0, 1)}
