"""Running notebooks headless: execute with papermill, move finished outputs into place, time each run; the
report and its sweeps.

Not notebook content, and not the parts this module calls: ``kernels`` (which kernel, its environment, no history),
``params`` (``--param`` parsing, checks and pre-checks, the SPLIT / TASK / FAST rules) and ``render`` (HTML with no
script from the network, the reader's layout). Their public names are importable from here too.

Outputs are written atomically. A notebook runs in a hidden staging folder next to its destination
(``.run-NAME-XXXXXXXX/``, removed afterwards); only a finished run is moved into place (``os.replace``), and
``metrics.json`` last, so its presence means the run completed. A failed run moves its executed notebook (with the
traceback) and its HTML into place and deletes the previous run's ``metrics.json`` and ``per_user.csv``: old numbers
never sit beside a new failure.

The report's HTML is laid out for a reader (``render.arrange_report``): code hidden, the answer first, absolute
folders of the machine replaced by a relative path or ``<data>``, ``<out>``, ``.``, ``<kit>``, ``~``, ``<python>``.

Sweeps (:func:`run_sweep`) run one report per value of one parameter into sub-folders, then compare them
(``course_lib/compare.py``).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
import time
import uuid
from pathlib import Path

from .files import KIT_ROOT, atomic_write, display_path
from .kernels import (KERNEL_ARGUMENTS, KERNEL_DISPLAY_NAME, KERNEL_NAME, headless_env, inline_figures, kernel_name,
                      remove_user_kernel, user_kernel_dir)
from .kernels import _same_env  # noqa: F401  (the tests check it through report)
from .params import (MIN_TEST_USERS, NOTEBOOK_DIR, PRECHECK_INPUTS, REPORT_NOTEBOOK, REPORT_TASKS, RESERVED,
                     _UNREADABLE, ReportParameterError, _default_value, _output_folder, find_sweep,
                     notebook_parameters, parse_param, precheck_report, validate_params)
from .render import HIDE_TAG, TOP_TAG, arrange_report, to_html

CELL_TIMEOUT_S = 3600  # per cell: 07 trains a model for ~10-25 min on a laptop CPU; this only catches a hang
HEADLESS = {"INTERACTIVE": False}  # injected into headless runs of notebooks that declare it (those with widgets)
REPORT_FILES = ("per_user.csv", "metrics.json")  # what the report notebook writes into OUTPUT_DIR; moved into place
#                                                 last and in this order, so metrics.json (last) means "finished"

__all__ = ["CELL_TIMEOUT_S", "HIDE_TAG", "KERNEL_DISPLAY_NAME", "KERNEL_NAME", "MIN_TEST_USERS", "NOTEBOOK_DIR",
           "REPORT_NOTEBOOK", "REPORT_TASKS", "ReportParameterError", "ReportRunError", "TOP_TAG", "arrange_report",
           "execute", "find_sweep", "kernel_name", "list_notebooks", "notebook_parameters", "parse_param",
           "precheck_report", "refresh_in_place", "remove_user_kernel", "report_command", "run_notebooks",
           "run_report", "run_sweep", "select_notebooks", "to_html", "user_kernel_dir", "validate_params"]


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


def execute(src: str | Path, dest: str | Path, parameters: dict | None = None, timeout: int = CELL_TIMEOUT_S):
    """Execute ``src`` with papermill into ``dest``, with ``parameters`` injected; return the notebook."""
    import papermill as pm

    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    declared = notebook_parameters(src)
    params = {**{k: v for k, v in HEADLESS.items() if k in declared}, **(parameters or {})}
    headless_env()
    with inline_figures():
        return pm.execute_notebook(
            str(src), str(dest), parameters=params, kernel_name=kernel_name(), cwd=str(src.parent),
            progress_bar=False, execution_timeout=timeout, report_mode=False,
            extra_arguments=list(KERNEL_ARGUMENTS),  # the kernel keeps no IPython history (kernels.py)
        )


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

    headless_env()
    for nb_path in select_notebooks(names, folder):
        nb = nbformat.read(str(nb_path), as_version=4)
        t0 = time.perf_counter()
        with inline_figures():
            NotebookClient(nb, timeout=timeout, kernel_name=kernel_name(), record_timing=False,
                           extra_arguments=list(KERNEL_ARGUMENTS),
                           resources={"metadata": {"path": str(nb_path.parent)}}).execute()
        nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": KERNEL_DISPLAY_NAME, "language": "python"}
        nb.metadata.pop("widgets", None)  # widget state saved by JupyterLab belongs to a learner's copy, not the kit
        text = nbformat.writes(nb)
        atomic_write(nb_path, text if text.endswith("\n") else text + "\n")  # as nbformat.write ends it
        print(f"  {nb_path.stem}: {time.perf_counter() - t0:.1f} s", flush=True)


# ---------------------------------------------------------------------------------------------------------
# python -m course_lib report
# ---------------------------------------------------------------------------------------------------------
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
    """A value as ``--param NAME=VALUE`` reads it back (:func:`parse_param`): a string's commas escaped."""
    return value.replace(",", "\\,") if isinstance(value, str) else repr(value)


def report_command(out, given: dict) -> str:
    """The command line that reproduces a run with these (validated) parameters, paths relative to the working
    folder (``<data>``/``<out>`` for folders outside it, which a reader's machine would not have anyway), and the
    kit's version (``git describe``, without taking the index lock) when it is a git checkout."""
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
        # --no-optional-locks: --dirty refreshes the index, which would take .git/index.lock and could collide
        # with the learner's own git commands; without it git only reads
        r = subprocess.run(["git", "--no-optional-locks", "-C", str(KIT_ROOT), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=5)
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
