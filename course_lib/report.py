"""Running notebooks headless: execute with papermill, render HTML with nbconvert, time each run.

Not notebook content: this module only runs notebooks and writes files; what they compute lives elsewhere.

Outputs are written atomically. A notebook runs in a hidden staging folder next to its destination
(``.run-NAME-XXXXXXXX/``, removed afterwards); only a finished run is moved into place (``os.replace``), and
``metrics.json`` last, so its presence means the run completed. A failed run moves its executed notebook (with the
traceback) and its HTML into place and deletes the previous run's ``metrics.json`` and ``per_user.csv``: old numbers
never sit beside a new failure.

The report's HTML is laid out for a reader (:func:`arrange_report`): code hidden (nbconvert's ``exclude_input``;
``with_code=True`` keeps it), and the page opens with the title, then the outputs of the cells tagged
``report-top-1``, ``report-top-2``, ... in that order (the headlines, the key figure, the parameters), then the
command that reproduces the run. The notebook keeps its teaching order; only the HTML is rearranged. Cells tagged
``report-hide`` (the teaching introduction, the exercises) are left out of the reader's page. Absolute folders of
the machine (the data, ``--out``, the working folder, the kit, the home folder, Python's) are replaced by a relative
path or ``<data>``, ``<out>``, ``.``, ``<kit>``, ``~``, ``<python>`` in every output shown.

Sweeps (:func:`run_sweep`) run one report per value of one parameter into sub-folders, then compare them
(``course_lib/compare.py``).
"""
from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .files import KIT_ROOT, atomic_write, display_path

NOTEBOOK_DIR = KIT_ROOT / "notebooks"
REPORT_NOTEBOOK = NOTEBOOK_DIR / "09_report.ipynb"
KERNEL_NAME = "course-kit"  # the notebooks' kernelspec; `make install` registers it in .venv and for the user
KERNEL_DISPLAY_NAME = "Python (course kit)"
CELL_TIMEOUT_S = 3600  # per cell: 07 trains a model for ~10-25 min on a laptop CPU; this only catches a hang
HEADLESS = {"INTERACTIVE": False}  # injected into headless runs of notebooks that declare it (those with widgets)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"  # headless kernels draw figures into the notebook
REPORT_FILES = ("per_user.csv", "metrics.json")  # what the report notebook writes into OUTPUT_DIR; moved into place
#                                                 last and in this order, so metrics.json (last) means "finished"
TOP_TAG = "report-top-"  # report-top-1, report-top-2, ...: these cells' outputs open the reader's page, in that order
HIDE_TAG = "report-hide"  # left out of the reader's page (the teaching introduction, exercises); kept with the code
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


def execute(src: str | Path, dest: str | Path, parameters: dict | None = None, timeout: int = CELL_TIMEOUT_S):
    """Execute ``src`` with papermill into ``dest``, with ``parameters`` injected; return the notebook."""
    import papermill as pm

    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    declared = notebook_parameters(src)
    params = {**{k: v for k, v in HEADLESS.items() if k in declared}, **(parameters or {})}
    _headless_env()
    with _inline_figures():
        return pm.execute_notebook(
            str(src), str(dest), parameters=params, kernel_name=kernel_name(), cwd=str(src.parent),
            progress_bar=False, execution_timeout=timeout, report_mode=False,
        )


@contextmanager
def _inline_figures():
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


def to_html(notebook: str | Path, html: str | Path, with_code: bool = True, layout: dict | None = None) -> Path:
    """Render an executed notebook to a standalone HTML file.

    ``with_code=False`` hides every code cell's input (nbconvert's documented ``exclude_input``, with the prompts).
    ``layout``: keyword arguments of :func:`arrange_report` (title, command, redact) and ``page_title`` (the
    browser tab's), for the reader's report.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    name = Path(notebook).stem
    if layout is not None:
        layout = dict(layout)
        name = layout.pop("page_title", None) or name
        nb = arrange_report(nb, with_code=with_code, **layout)
    hide = not with_code
    exporter = HTMLExporter(exclude_input=hide, exclude_input_prompt=hide, exclude_output_prompt=hide)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    return atomic_write(html, body)


def _top_rank(cell) -> int | None:
    for tag in cell.get("metadata", {}).get("tags", []):
        if tag.startswith(TOP_TAG) and tag[len(TOP_TAG):].isdigit():
            return int(tag[len(TOP_TAG):])
    return None


def _redactor(redact):
    """A function replacing each absolute folder of ``redact`` (``[(folder, shown as)]``, longest first) in a text."""
    pairs = []
    for folder, shown in redact or ():
        folder = str(folder).rstrip("/\\")
        if len(Path(folder).parts) >= 2:  # never "/" or "C:\\": that would rewrite every path
            pairs.append((folder, shown))
    pairs.sort(key=lambda p: -len(p[0]))
    patterns = [(re.compile(re.escape(f) + r"(?![\w.-])"), shown) for f, shown in pairs]

    def apply(text):
        if isinstance(text, list):
            return [apply(t) for t in text]
        if not isinstance(text, str):
            return text
        for pattern, shown in patterns:
            text = pattern.sub(lambda _m, s=shown: s, text)
        return text

    return apply


def arrange_report(nb, title: str = "", command: str = "", with_code: bool = False, redact=()):
    """The reader's layout of an executed report notebook (a copy; the notebook itself is not changed).

    The page opens with ``title`` (markdown), the outputs of the cells tagged ``report-top-N`` in the order of N
    (without their code), and ``command`` (the exact command line that reproduces the run), then "Details": the
    notebook in its own order. Without the code (the default report), the cells tagged ``report-hide`` and code
    cells with no output are left out, and a tagged cell's old place says where its output went; with the code,
    every cell stays where it was. ``redact``: ``[(absolute folder, shown as)]`` replaced in every output (and, with
    the code, every source), so no folder of the machine that ran it appears.
    """
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    clean = _redactor(redact)
    for cell in nb.cells:
        if with_code:
            cell.source = clean(cell.source)
        for out in cell.get("outputs", []):
            for key in ("text", "traceback", "evalue"):
                if key in out:
                    out[key] = clean(out[key])
            for mime, value in out.get("data", {}).items():
                if mime.startswith("text/"):
                    out["data"][mime] = clean(value)
    top = sorted((rank, i) for i, c in enumerate(nb.cells) if (rank := _top_rank(c)) is not None)
    head = [nbformat.v4.new_markdown_cell(title)] if title else []
    for _, i in top:
        shown = copy.deepcopy(nb.cells[i])
        if "id" in shown:
            shown.id = f"top-{shown.id}"[:64]  # the original may stay in place (with the code): ids must differ
        if shown.cell_type == "code":  # the output only: nbconvert's templates honour this flag
            shown.metadata.setdefault("transient", {})["remove_source"] = True
            shown.execution_count = None
        head.append(shown)
    if command:
        head.append(nbformat.v4.new_markdown_cell("**Reproduce this run**\n\n```bash\n" + command + "\n```"))
    head.append(nbformat.v4.new_markdown_cell(
        "---\n## Details\nEvery table and figure of the run, in the order the notebook computes them. "
        + ("" if with_code else "The code is in `report.ipynb` next to this page (or run with `--with-code`).")))
    moved = {i for _, i in top}
    body = []
    for i, cell in enumerate(nb.cells):
        if not with_code:
            if HIDE_TAG in cell.get("metadata", {}).get("tags", []):
                continue
            if i in moved:
                if body and body[-1].cell_type == "markdown":  # a heading would otherwise stand over nothing
                    body.append(nbformat.v4.new_markdown_cell("*(shown at the top of this report)*"))
                continue
            if cell.cell_type == "code" and not cell.get("outputs"):
                continue
        body.append(cell)
    nb.cells = head + body
    return nb


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


def _run_atomic(src: Path, nb_dest: Path, params: dict, timeout: int, files_dest: Path | None = None,
                html: dict | None = None) -> dict:
    """Execute ``src`` in a staging folder, then move the notebook, its HTML (rendered with ``to_html(**html)``)
    and (``files_dest``) what it wrote into ``OUTPUT_DIR`` into place. See the module docstring for what a failure
    leaves (its HTML keeps the code: a traceback reads better next to the cell that raised it)."""
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
        to_html(staged_nb, staged_html, **(html or {}))
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
        last = sorted((f for f in produced if f.name in REPORT_FILES), key=lambda f: REPORT_FILES.index(f.name))
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
        _run_atomic(nb, out / nb.name, params, timeout=CELL_TIMEOUT_S, files_dest=files_dest)
        results.append({"notebook": nb.stem, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  {nb.stem}: {results[-1]['seconds']} s -> {out / (nb.stem + '.html')}", flush=True)
    return results


def refresh_in_place(names=None, folder: str | Path = NOTEBOOK_DIR, timeout: int = CELL_TIMEOUT_S) -> None:
    """Re-execute committed notebooks in place with their defaults (no papermill metadata), for commits."""
    import nbformat
    from nbclient import NotebookClient

    _headless_env()
    for nb_path in select_notebooks(names, folder):
        nb = nbformat.read(str(nb_path), as_version=4)
        t0 = time.perf_counter()
        with _inline_figures():
            NotebookClient(nb, timeout=timeout, kernel_name=kernel_name(), record_timing=False,
                           resources={"metadata": {"path": str(nb_path.parent)}}).execute()
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
        nb.metadata.pop("widgets", None)  # widget state saved by JupyterLab belongs to a learner's copy, not the kit
        text = nbformat.writes(nb)
        atomic_write(nb_path, text if text.endswith("\n") else text + "\n")  # as nbformat.write ends it
        print(f"  {nb_path.stem}: {time.perf_counter() - t0:.1f} s", flush=True)


# ---------------------------------------------------------------------------------------------------------
# python -m course_lib report
# ---------------------------------------------------------------------------------------------------------
REPORT_TASKS = ("discovery", "repeat-aware")
FINETUNE_METHODS = ("adapter", "top-layers", "lora")  # course_lib.finetune.METHODS (not imported: it loads torch)


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
        "N_EXPLAIN": (lambda v: v >= 2, "must be >= 2 (users in the paired fidelity test)"),
        "FINETUNE_PAIRS": (lambda v: v >= 2, "must be >= 2 (training pairs; in-batch negatives need two)"),
        "FINETUNE_EPOCHS": (lambda v: v >= 0, "must be >= 0 (0: the method's own number of epochs)"),
        "FINETUNE_METHOD": (lambda v: v in FINETUNE_METHODS, f"must be one of {FINETUNE_METHODS}"),
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


PRECHECK_INPUTS = ("DATASET", "DATA_DIR", "FAST", "SEED", "K", "TEST_FRAC", "TEXT_MODEL")  # what precheck_report reads


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
        from .runtime import offline as runtime_offline  # the kit's one offline switch
        offline = runtime_offline(default=True)
        try:
            locate_text_model(params["TEXT_MODEL"], offline=offline)  # headless runs are offline unless told not
        except ModelNotFoundError as e:
            raise ReportParameterError(f"TEXT_MODEL: {e}") from None
    return facts


def run_report(out: str | Path, dataset: str = "shop", data_dir: str | None = None, params: dict | None = None,
               timeout: int = 1800, with_code: bool = False) -> dict:
    """Validate and pre-check, then execute the report notebook into ``out``: ``report.ipynb``, ``report.html``
    (the reader's layout; ``with_code=True`` keeps the code), ``per_user.csv`` and ``metrics.json`` (atomically;
    see the module docstring)."""
    out = _output_folder(out)
    spec = notebook_parameters(REPORT_NOTEBOOK)
    given = _validated(dataset, data_dir, params, spec)
    _prechecked(given, spec)
    return _execute_report(out, given, timeout, with_code)


def _validated(dataset, data_dir, params, spec) -> dict:
    params = dict(params or {})
    for name, why in RESERVED.items():
        if name in params:
            raise ReportParameterError(f"{name} cannot be passed as a parameter: {why}")
    given = {"DATASET": dataset, **params}
    if data_dir is not None:
        given["DATA_DIR"] = data_dir
    return validate_params(given, spec)


def _prechecked(given: dict, spec: dict) -> dict:
    defaults = {name: _default_value(info) for name, info in spec.items() if name not in RESERVED}
    return precheck_report({**{k: v for k, v in defaults.items() if v is not _UNREADABLE}, **given})


def _execute_report(out: Path, given: dict, timeout: int, with_code: bool) -> dict:
    t0 = time.perf_counter()
    layout = {"title": _report_title(given), "command": report_command(out, given),
              "redact": _machine_folders(out, given.get("DATA_DIR")),
              "page_title": f"Report: {given.get('DATASET', 'shop')}"}
    done = _run_atomic(REPORT_NOTEBOOK, out / "report.ipynb", given, timeout, files_dest=out,
                       html={"with_code": with_code, "layout": layout})
    return {"notebook": done["notebook"], "html": done["html"], "metrics": done["files"]["metrics.json"],
            "per_user": done["files"]["per_user.csv"], "seconds": round(time.perf_counter() - t0, 1)}


def _report_title(given: dict) -> str:
    return (f"# Recommendation report: {given.get('DATASET', 'shop')}\n"
            f"{time.strftime('%Y-%m-%d %H:%M')} · made by `python -m course_lib report` from notebook "
            f"`{REPORT_NOTEBOOK.stem}` · the code and every cell: [report.ipynb](report.ipynb)")


def _param_text(value) -> str:
    """A value as ``--param NAME=VALUE`` reads it back (:func:`parse_param`)."""
    return value if isinstance(value, str) else repr(value)


def report_command(out, given: dict) -> str:
    """The command line that reproduces a run with these (validated) parameters, paths relative to the working
    folder (``<data>``/``<out>`` for folders outside it, which a reader's machine would not have anyway), and the
    kit's version (``git describe``) when it is a git checkout."""
    args = ["python", "-m", "course_lib", "report", "--dataset", str(given.get("DATASET", "shop"))]
    if given.get("DATA_DIR") is not None:
        args += ["--data-dir", display_path(given["DATA_DIR"], "<data>", bases=[Path.cwd()])]
    for name, value in given.items():
        if name not in ("DATASET", "DATA_DIR"):
            args += ["--param", f"{name}={_param_text(value)}"]
    args += ["--out", display_path(out, "<out>", bases=[Path.cwd()])]
    version = _kit_version()
    return shlex.join(args) + (f"\n# course kit {version}" if version else "")


def _kit_version() -> str | None:
    import subprocess

    try:
        r = subprocess.run(["git", "-C", str(KIT_ROOT), "describe", "--always", "--dirty"], capture_output=True,
                           text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return f"at commit {r.stdout.strip()}" if r.returncode == 0 and r.stdout.strip() else None


def _machine_folders(out: Path, data_dir) -> list[tuple[str, str]]:
    """``[(absolute folder, shown as)]`` for :func:`arrange_report`: what must not appear in a shared report."""
    cwd = Path.cwd().resolve()
    pairs = [(str(Path(out).resolve()), display_path(out, "<out>", bases=[cwd]))]
    if data_dir is not None:
        pairs.append((str(Path(data_dir).resolve()), display_path(data_dir, "<data>")))
    pairs += [(str(cwd), "."), (str(KIT_ROOT), "<kit>"), (str(Path.home().resolve()), "~"),
              (str(Path(sys.prefix).resolve()), "<python>")]
    return pairs


# ---------------------------------------------------------------------------------------------------------
# sweeps: one report per value of one parameter, then the comparison
# ---------------------------------------------------------------------------------------------------------
NOT_SWEPT = {"DATASET": "runs of different datasets cannot be compared; run one report per dataset",
             "DATA_DIR": "runs of different data folders cannot be compared; run one report per folder"}


def find_sweep(params: dict, spec: dict | None = None) -> tuple[dict, tuple[str, list] | None]:
    """Split parsed ``--param`` values into fixed ones and at most one sweep: ``NAME=V1,V2,...`` (or ``[V1, V2]``)
    for a parameter that is not itself a list. Returns ``(fixed, (NAME, [values]) or None)``; an empty sweep, a
    sweep of one value, a repeated value or two swept parameters are refused in one line."""
    spec = spec or notebook_parameters(REPORT_NOTEBOOK)
    fixed, sweeps = {}, {}
    for name, value in params.items():
        values = _sweep_values(name, value, spec.get(name, {}).get("type"))
        if values is None:
            fixed[name] = value
        else:
            sweeps[name] = values
    if not sweeps:
        return fixed, None
    if len(sweeps) > 1:
        raise ReportParameterError(f"sweep one parameter at a time: {' and '.join(sweeps)} both have several values")
    name, values = next(iter(sweeps.items()))
    if name in NOT_SWEPT:
        raise ReportParameterError(f"--param {name} cannot be swept: {NOT_SWEPT[name]}")
    return fixed, (name, values)


def _sweep_values(name: str, value, kind) -> list | None:
    if kind == "list":
        return None  # a list-valued parameter takes a list as one value
    example = f"e.g. --param {name}=0,0.25,0.5" if kind == "float" else f"e.g. --param {name}=A,B"
    if isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, str) and "," in value:
        parts = [p.strip() for p in value.split(",")]
        if not any(parts):
            items = []
        elif not all(parts):
            raise ReportParameterError(f"--param {name}={value}: an empty value in the sweep; give values separated "
                                       f"by single commas, {example}")
        else:
            items = [parse_param(f"{name}={p}")[1] for p in parts]
    else:
        return None
    if not items:
        raise ReportParameterError(f"--param {name}={value!s}: the sweep is empty; give two or more values separated "
                                   f"by commas, {example}")
    if len(items) < 2:
        raise ReportParameterError(f"--param {name}: a sweep needs two or more values, got only {items[0]!r}; "
                                   f"drop the comma for one run")
    return items


def _folder_name(name: str, value) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{name}={_param_text(value)}")[:80]


def run_sweep(out: str | Path, dataset: str = "shop", data_dir: str | None = None, params: dict | None = None,
              sweep: tuple[str, list] | None = None, timeout: int = 1800, with_code: bool = False,
              metrics=("ndcg", "recall"), echo=print) -> dict:
    """One report per value of ``sweep = (NAME, [values])`` into ``out/NAME=VALUE/``, then their comparison
    (``out/compare.html``, see ``course_lib/compare.py``; the first value is the reference).

    Every value is validated and pre-checked before the first run starts. ``echo`` gets one line when each run
    starts and one when it ends. A run that fails stops the sweep (exit 1 from the command line); the runs that
    finished stay in their folders.
    """
    from .compare import compare_runs, write_html

    if sweep is None:
        raise ReportParameterError("a sweep needs NAME and two or more values, e.g. --param ALPHA=0,0.5,1")
    name, values = sweep
    out = _output_folder(out)
    spec = notebook_parameters(REPORT_NOTEBOOK)
    givens, folders = [], []
    for i, value in enumerate(values, 1):
        try:
            given = _validated(dataset, data_dir, {**dict(params or {}), name: value}, spec)
        except ReportParameterError as e:
            raise ReportParameterError(f"sweep value {i} of {len(values)} ({name}={value!r}): {e}") from None
        folder = out / _folder_name(name, given[name])
        if folder in folders:
            raise ReportParameterError(f"--param {name}: the sweep gives {given[name]!r} twice; give each value once")
        _output_folder(folder)
        givens.append(given)
        folders.append(folder)
    checked = set()
    for i, given in enumerate(givens, 1):
        key = repr([given.get(k) for k in PRECHECK_INPUTS])
        if key in checked:  # e.g. an ALPHA sweep: the data and K checks are the same for every value
            continue
        try:
            _prechecked(given, spec)
        except ReportParameterError as e:
            raise ReportParameterError(f"sweep value {i} of {len(values)} ({name}={given[name]!r}): {e}") from None
        checked.add(key)
    runs = []
    for i, (given, folder) in enumerate(zip(givens, folders), 1):
        where = display_path(folder, str(folder), bases=[Path.cwd()])
        echo(f"[{i}/{len(givens)}] {name}={_param_text(given[name])}: running -> {where}/report.html")
        try:
            runs.append(_execute_report(folder, given, timeout, with_code))
        except ReportRunError as e:
            raise ReportRunError(f"sweep run {i} of {len(givens)} ({name}={given[name]!r}): {e}") from None
        echo(f"[{i}/{len(givens)}] {name}={_param_text(given[name])}: done in {runs[-1]['seconds']} s")
    comparison = compare_runs(folders, metrics=metrics, labels=[f.name for f in folders])
    html = write_html(comparison, out / "compare.html")
    return {"runs": runs, "comparison": comparison, "html": html}


def _default_value(info: dict):
    """A parameter's default as the notebook states it (a Python literal), so pre-checks see what the run will."""
    import ast

    try:
        return ast.literal_eval(info["default"])
    except (ValueError, SyntaxError):
        return _UNREADABLE  # an expression (e.g. 2 ** 3): the pre-checks skip it, the notebook computes it


_UNREADABLE = object()
