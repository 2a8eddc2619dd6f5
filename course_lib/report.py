"""Running notebooks headless: execute with papermill, render HTML with nbconvert, time each run.

Not notebook content: this module only runs notebooks and writes files; what they compute lives elsewhere.

Outputs are written atomically. A notebook runs in a hidden staging folder next to its destination
(``.run-NAME-XXXXXXXX/``, removed afterwards); only a finished run is moved into place (``os.replace``), and
``metrics.json`` last, so its presence means the run completed. A failed run moves its executed notebook (with the
traceback) and its HTML into place and deletes the previous run's ``metrics.json``: old numbers never sit beside a
new failure. Inside the executed report notebook the printed path of ``metrics.json`` is the staging folder's.
"""
from __future__ import annotations

import math
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from .files import atomic_write

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
REPORT_NOTEBOOK = NOTEBOOK_DIR / "07_report.ipynb"
KERNEL_NAME = "course-kit"  # registered into .venv by `make`; falls back to "python3"
HEADLESS = {"INTERACTIVE": False}  # injected into every headless run
REPORT_FILES = ("metrics.json",)  # what the report notebook writes into OUTPUT_DIR (moved into place last)
MIN_TEST_USERS = 20  # fewer users with test (or validation) events make every interval meaningless: refused


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


def select_notebooks(names=None, folder: str | Path = NOTEBOOK_DIR) -> list[Path]:
    """The notebooks named in ``names`` (``"00_welcome"``, ``"00_welcome.ipynb"`` or just ``"00"``), in course
    order; ``None`` means all. An unknown or ambiguous name is an error listing the valid ones, never a silent no-op."""
    found = list_notebooks(folder)
    if names is None:
        return found
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ReportParameterError("--only needs at least one notebook name, e.g. --only 00_welcome")
    chosen = set()
    for name in names:
        key = str(name).strip().removesuffix(".ipynb")
        hits = [p for p in found if p.stem == key] or [p for p in found if p.stem.split("_", 1)[0] == key]
        if len(hits) != 1:
            raise ReportParameterError(f"unknown notebook {name!r}; valid: {', '.join(p.stem for p in found)}")
        chosen.add(hits[0])
    return [p for p in found if p in chosen]


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
    return atomic_write(html, body)


class ReportRunError(RuntimeError):
    """A notebook ran and failed (its executed copy with the traceback is kept); said in one line."""


def _stage_dir(parent: Path, stem: str) -> Path:
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = parent / f".run-{stem}-{uuid.uuid4().hex[:8]}"
        stage.mkdir()
    except OSError as e:
        raise ReportParameterError(f"output folder {parent} cannot be written ({e.strerror or e}); "
                                   "choose another --out") from None
    return stage


def _run_atomic(src: Path, nb_dest: Path, params: dict, timeout: int, files_dest: Path | None = None) -> dict:
    """Execute ``src`` in a staging folder, then move the notebook, its HTML and (``files_dest``) what it wrote
    into ``OUTPUT_DIR`` into place. See the module docstring for what a failure leaves."""
    from papermill.exceptions import PapermillExecutionError

    html_dest = nb_dest.with_suffix(".html")
    stage = _stage_dir(nb_dest.parent, nb_dest.stem)
    staged_nb, staged_html, staged_files = stage / nb_dest.name, stage / html_dest.name, stage / "files"
    if files_dest is not None:
        params = {**params, "OUTPUT_DIR": str(staged_files)}
    try:
        try:
            execute(src, staged_nb, params, timeout=timeout)
        except PapermillExecutionError as e:
            for name in REPORT_FILES if files_dest is not None else ():
                (files_dest / name).unlink(missing_ok=True)  # the old run's numbers must not outlive this failure
            try:
                to_html(staged_nb, staged_html)
                os.replace(staged_html, html_dest)
            except Exception:  # the HTML of a failure is a courtesy; the notebook below is what matters
                html_dest.unlink(missing_ok=True)
            os.replace(staged_nb, nb_dest)
            raise ReportRunError(f"{src.stem} failed in cell {e.exec_count}: {e.ename}: {str(e.evalue)[:300]} "
                                 f"(executed notebook with the traceback: {nb_dest})") from None
        to_html(staged_nb, staged_html)
        produced = sorted(staged_files.iterdir()) if staged_files.is_dir() else []
        if files_dest is not None:
            missing = [n for n in REPORT_FILES if not (staged_files / n).exists()]
            if missing:
                raise ReportRunError(f"{src.stem} ran but wrote no {', '.join(missing)} into OUTPUT_DIR")
            files_dest.mkdir(parents=True, exist_ok=True)
            for name in REPORT_FILES:
                (files_dest / name).unlink(missing_ok=True)
        os.replace(staged_nb, nb_dest)
        os.replace(staged_html, html_dest)
        moved = {}
        last = [f for f in produced if f.name in REPORT_FILES]
        for f in [f for f in produced if f.name not in REPORT_FILES] + last:  # metrics.json last: it means "done"
            _usual_permissions(f)
            os.replace(f, files_dest / f.name)
            moved[f.name] = files_dest / f.name
        return {"notebook": nb_dest, "html": html_dest, "files": moved}
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _usual_permissions(path: Path) -> None:
    """What a notebook wrote with ``tempfile.mkstemp`` (private, 0600) gets what ``open()`` would give it."""
    mask = os.umask(0)
    os.umask(mask)
    try:
        os.chmod(path, 0o666 & ~mask)
    except OSError:
        pass


def run_notebooks(out: str | Path = "reports", parameters: dict | None = None, names=None,
                  folder: str | Path = NOTEBOOK_DIR) -> list[dict]:
    """Execute each notebook into ``out/NAME.ipynb`` and ``out/NAME.html`` (atomically); return timings.

    ``names`` selects notebooks (unknown names are an error). The report notebook (07) writes its ``metrics.json``
    into ``out/shop``.
    """
    out = _output_folder(out, "--out")
    notebooks = select_notebooks(names, folder)
    results = []
    for nb in notebooks:
        t0 = time.perf_counter()
        params = dict(parameters or {})
        files_dest = None
        if nb.name == REPORT_NOTEBOOK.name and "OUTPUT_DIR" not in params:
            files_dest = out / "shop"
        _run_atomic(nb, out / nb.name, params, timeout=900, files_dest=files_dest)
        results.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  {nb.stem}: {results[-1]['seconds']} s -> {out / (nb.stem + '.html')}", flush=True)
    return results


def refresh_in_place(names=None, folder: str | Path = NOTEBOOK_DIR, timeout: int = 900) -> None:
    """Re-execute committed notebooks in place with their defaults (no papermill metadata), for commits."""
    import nbformat
    from nbclient import NotebookClient

    _headless_env()
    for nb_path in select_notebooks(names, folder):
        nb = nbformat.read(str(nb_path), as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name=kernel_name(), record_timing=False,
                       resources={"metadata": {"path": str(nb_path.parent)}}).execute()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        text = nbformat.writes(nb)
        atomic_write(nb_path, text if text.endswith("\n") else text + "\n")  # as nbformat.write ends it
        print(f"  {nb_path.stem}: {time.perf_counter() - t0:.1f} s", flush=True)


# ---------------------------------------------------------------------------------------------------------
# python -m course_lib report
# ---------------------------------------------------------------------------------------------------------
REPORT_TASKS = ("discovery", "repeat-aware")


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
    if not name:
        raise ReportParameterError(f"--param {text!r}: the NAME before '=' is empty, e.g. --param K=20")
    if raw.lower() in ("true", "false"):
        return name, raw.lower() == "true"
    if raw.lower() in ("none", "null"):
        return name, None
    try:
        return name, ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return name, raw


def _range_checks() -> dict:
    """Per-name checks after the type check: ``NAME -> (ok(value) -> bool, "what it must be")``.

    Extend this table when a notebook gains a parameter with a range (checks that need the data, such as K against
    the catalogue size, live in :func:`precheck_report`). Names not listed are checked by type only.
    """
    from .data import DATASETS, SPLITS
    from .encode import POOLINGS
    from .runtime import SEED_MAX

    return {
        "DATASET": (lambda v: str(v).lower() in DATASETS, f"must be one of {DATASETS}"),
        "POOLING": (lambda v: v in POOLINGS, f"must be one of {POOLINGS}"),
        "SPLIT": (lambda v: v in SPLITS, f"must be one of {SPLITS}"),
        "TASK": (lambda v: v in REPORT_TASKS, f"must be one of {REPORT_TASKS} (masked-but-counted is a mistake shown "
                                              "in notebook 06, not a report option)"),
        "TEXT_MODEL": (lambda v: bool(str(v).strip()), "must name a model (an id or a folder)"),
        "K": (lambda v: v > 0, "must be > 0"),
        "TEST_FRAC": (lambda v: 0 < v < 1, "must be between 0 and 1 (exclusive)"),
        "VALID_FRAC": (lambda v: 0 < v < 1, "must be between 0 and 1 (exclusive)"),
        "ALPHA": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
        "HALF_LIFE_DAYS": (lambda v: v > 0, "must be > 0"),
        "SEED": (lambda v: 0 <= v <= SEED_MAX, f"must be between 0 and {SEED_MAX} (2**32 - 1)"),
        "IMAGE_SIZE": (lambda v: 32 <= v <= 1024, "must be between 32 and 1024 pixels"),
        "N_BOOT": (lambda v: v >= 10, "must be >= 10 (bootstrap resamples)"),
    }


# set by the runner itself, never by a user
RESERVED = {"OUTPUT_DIR": "it is set by --out", "INTERACTIVE": "headless runs always use INTERACTIVE=False"}


def _finite(name: str, value) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ReportParameterError(f"{name} must be a finite number, got {value}")
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite(f"{name}[{i}]", v)
    if isinstance(value, dict):
        for k, v in value.items():
            _finite(f"{name}[{k!r}]", v)


def validate_params(params: dict, spec: dict | None = None) -> dict:
    """Check names, types and ranges before anything runs; return the parameters with numbers coerced.

    Generic: the names and types come from the notebook's ``parameters`` cell (``spec``), the ranges from
    :func:`_range_checks`. Every float, also inside a list, must be finite (``1e999`` is infinity).
    """
    from . import checks

    spec = spec or notebook_parameters(REPORT_NOTEBOOK)
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ReportParameterError(f"unknown parameter(s) {unknown}; valid: {', '.join(sorted(spec))}")
    out = {}
    for name, value in params.items():
        kind = spec[name]["type"]
        _finite(name, value)
        try:
            if kind == "int":
                value = checks.integer(name, value)
            elif kind == "float":
                value = checks.number(name, value)
            elif kind == "bool":
                value = checks.boolean(name, value)
            elif kind == "str" and not isinstance(value, str):
                if value is None or isinstance(value, (list, dict, tuple)):
                    raise TypeError(f"{name} must be a string, got {value!r}")
                value = str(value)
            elif kind == "list" and not isinstance(value, (list, tuple)):
                raise TypeError(f"{name} must be a list like {spec[name]['default']}, got {value!r}")
        except (TypeError, ValueError) as e:
            raise ReportParameterError(str(e)) from None
        out[name] = value
    for name, (ok, what) in _range_checks().items():
        if name in out and out[name] is not None and not ok(out[name]):
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


def _output_folder(out, flag: str = "--out") -> Path:
    """An output folder that exists or can be created: not a file, not under a file, in a writable place."""
    if out is None or not str(out).strip():
        raise ReportParameterError(f"{flag} DIR is required: where report.html and metrics.json go")
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ReportParameterError(f"{flag} {path} is a file; give a folder (it is created if missing)")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ReportParameterError(f"{flag} {path} cannot be created: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ReportParameterError(f"{flag} {path} cannot be written: no write permission in {parent}")
    return path


def precheck_report(params: dict) -> dict:
    """The checks that need the data or the model, done in seconds before the run (each failure is one line):
    the dataset loads from its folder, ``K`` fits the catalogue, ``TEST_FRAC`` leaves at least
    :data:`MIN_TEST_USERS` users with test events (and as many for the validation split the report tunes on),
    and ``TEXT_MODEL`` is available offline. Returns facts the run will see (sizes)."""
    from . import constants as C
    from .data import DataError, load_dataset, split_by_time
    from .encode import ModelNotFoundError, locate_text_model

    dataset = str(params.get("DATASET", "shop"))
    try:
        ds = load_dataset(dataset, params.get("DATA_DIR"))
    except DataError as e:
        raise ReportParameterError(f"dataset {dataset!r} cannot be loaded: {e}") from None
    if params.get("FAST"):
        ds = ds.sample_users(300, seed=int(params.get("SEED", 42)))  # as the report notebook does
    facts = {"items": len(ds.items), "users": len(ds.users)}
    k = params.get("K")
    if k is not None and k > len(ds.items):
        raise ReportParameterError(f"K must be <= {len(ds.items)} (the number of items in {dataset!r}), got {k}")
    frac = params.get("TEST_FRAC")
    if frac is not None:
        split = split_by_time(ds.interactions, test_frac=frac)
        inner = split_by_time(split.train, test_frac=frac)
        for what, part in (("test", split.test), ("validation", inner.test)):
            n = part[C.USER].nunique()
            facts[f"{what} users"] = n
            if n < MIN_TEST_USERS:
                raise ReportParameterError(
                    f"TEST_FRAC={frac} leaves {n} user(s) with {what} events in {dataset!r}"
                    + (" (FAST: 300 sampled users)" if params.get("FAST") else "")
                    + f"; the report needs at least {MIN_TEST_USERS}: raise TEST_FRAC (default 0.2)")
    if "TEXT_MODEL" in params:
        offline = os.environ.get("HF_HUB_OFFLINE", "1").strip().lower() in ("1", "true", "yes", "on")
        try:
            locate_text_model(params["TEXT_MODEL"], offline=offline)  # headless runs are offline unless told not
        except ModelNotFoundError as e:
            raise ReportParameterError(f"TEXT_MODEL: {e}") from None
    return facts


def run_report(out: str | Path, dataset: str = "shop", data_dir: str | None = None, params: dict | None = None,
               timeout: int = 1800) -> dict:
    """Validate and pre-check, then execute the report notebook into ``out``: ``report.ipynb``, ``report.html``,
    ``metrics.json`` (atomically; see the module docstring)."""
    params = dict(params or {})
    for name, why in RESERVED.items():
        if name in params:
            raise ReportParameterError(f"{name} cannot be passed as a parameter: {why}")
    out = _output_folder(out)
    spec = notebook_parameters(REPORT_NOTEBOOK)
    given = {"DATASET": dataset, **params}
    if data_dir is not None:
        given["DATA_DIR"] = data_dir
    given = validate_params(given, spec)
    defaults = {name: _default_value(info) for name, info in spec.items() if name not in RESERVED}
    precheck_report({**{k: v for k, v in defaults.items() if v is not _UNREADABLE}, **given})
    t0 = time.perf_counter()
    done = _run_atomic(REPORT_NOTEBOOK, out / "report.ipynb", given, timeout, files_dest=out)
    return {"notebook": done["notebook"], "html": done["html"], "metrics": done["files"]["metrics.json"],
            "seconds": round(time.perf_counter() - t0, 1)}


def _default_value(info: dict):
    """A parameter's default as the notebook states it (a Python literal), so pre-checks see what the run will."""
    import ast

    try:
        return ast.literal_eval(info["default"])
    except (ValueError, SyntaxError):
        return _UNREADABLE  # an expression (e.g. 2 ** 3): the pre-checks skip it, the notebook computes it


_UNREADABLE = object()
