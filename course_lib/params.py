"""Report parameters: parsing ``--param``, checking names, types and ranges before anything runs, the pre-checks
that need the data, sweeps; and the one place the report's SPLIT / TASK / FAST rules are written (the notebook and
the pre-checks both call :func:`report_dataset`, :func:`report_splits` and :func:`run_settings`).

Not running (``report.py``) and not rendering (``render.py``).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

from . import constants as C
from .files import KIT_ROOT

NOTEBOOK_DIR = KIT_ROOT / "notebooks"
REPORT_NOTEBOOK = NOTEBOOK_DIR / "09_report.ipynb"
MIN_TEST_USERS = 20  # fewer users with test (or validation) events make every interval meaningless: refused
FAST_USERS = 300  # FAST: the users sampled (with SEED) from the dataset
FAST_N_BOOT, N_BOOT = 200, 1000  # bootstrap resamples of a FAST and of a full run
FAST_IMAGE_SIZE, IMAGE_SIZE = 64, 128  # picture size of a FAST and of a full run


class ReportParameterError(ValueError):
    """A report parameter is unknown, of the wrong type, or out of range (said in one line)."""


# ---------------------------------------------------------------------------------------------------------
# the report's rules for FAST, SPLIT and TASK (the notebook and the pre-checks share them)
# ---------------------------------------------------------------------------------------------------------
def run_settings(fast: bool) -> dict:
    """What FAST changes besides the users: ``{"n_boot", "image_size", "note"}`` (``note`` is None for a full run)."""
    if not fast:
        return {"n_boot": N_BOOT, "image_size": IMAGE_SIZE, "note": None}
    return {"n_boot": FAST_N_BOOT, "image_size": FAST_IMAGE_SIZE,
            "note": f"FAST run: {FAST_USERS} random users, {FAST_IMAGE_SIZE}-px pictures, {FAST_N_BOOT} bootstrap "
                    "resamples; numbers are indicative only."}


def report_dataset(dataset: str = "shop", data_dir=None, fast: bool = False, seed: int = C.SEED):
    """The dataset a report runs on: loaded from ``data_dir``, and with ``fast`` only :data:`FAST_USERS` users
    sampled with ``seed``."""
    from .data import load_dataset

    ds = load_dataset(dataset, data_dir)
    return ds.sample_users(FAST_USERS, seed=seed) if fast else ds


def report_splits(interactions, split: str = "global", test_frac: float = 0.2):
    """``(split, inner)``: the test split a report evaluates on, and the validation split of its training period
    (the same kind and fraction) that tuning and the fallback choice use."""
    from .data import make_split

    outer = make_split(interactions, split, test_frac)
    return outer, make_split(outer.train, split, test_frac)


REPORT_TASKS = ("discovery", "repeat-aware")
FINETUNE_METHODS = ("adapter", "top-layers", "lora")  # course_lib.finetune.METHODS (not imported: it loads torch)


class OneString(str):
    """A ``--param`` string given whole (its commas escaped as ``\\,``, or the value quoted): never split into a
    sweep."""


def notebook_parameters(path: str | Path = REPORT_NOTEBOOK) -> dict:
    """``name -> {"type", "default", "help"}`` from the notebook's ``parameters`` cell (as papermill reads it)."""
    import papermill as pm

    spec = pm.inspect_notebook(str(path))
    return {k: {"type": v["inferred_type_name"], "default": v["default"], "help": v["help"]} for k, v in spec.items()}


def parse_param(text: str) -> tuple[str, object]:
    """``"NAME=VALUE"`` -> (NAME, value); the value is a Python literal if it parses as one, else a string.

    A comma separates the values of a sweep (:func:`find_sweep`); a string that holds a comma escapes it
    (``NAME=a\\,b``) or is quoted as a Python or JSON string (``NAME="a,b"``). Both give the one string ``a,b``.
    """
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
    if ESCAPED_COMMA in raw:  # a comma inside one string value; unescaped commas still separate sweep values
        if re.search(r"(?<!\\),", raw):
            return name, raw  # a sweep: find_sweep splits it at the other commas
        return name, OneString(raw.replace(ESCAPED_COMMA, ","))
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return name, raw
    return name, OneString(value) if isinstance(value, str) else value


ESCAPED_COMMA = "\\,"  # inside a --param value: a comma that is part of the value, not a sweep separator


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
        "LLM_MODEL": (lambda v: bool(str(v).strip()), "must name a causal LM (smollm2-135m, a hub id, a folder or a "
                                                      ".gguf path)"),
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


PRECHECK_INPUTS = ("DATASET", "DATA_DIR", "FAST", "SEED", "K", "SPLIT", "TEST_FRAC", "TEXT_MODEL")  # what it reads


def precheck_report(params: dict) -> dict:
    """The checks that need the data or the model, done in seconds before the run (each failure is one line):
    the dataset loads from its folder, ``K`` fits the catalogue, ``TEST_FRAC`` leaves at least
    :data:`MIN_TEST_USERS` users with test events (and as many for the validation split the report tunes on),
    and ``TEXT_MODEL`` is available offline. Returns facts the run will see (sizes).

    The data and splits are the run's own: :func:`report_dataset` (FAST samples :data:`FAST_USERS` users with
    ``SEED``) and :func:`report_splits` (``SPLIT``), the functions the notebook calls."""
    from .data import DataError
    from .encode import ModelNotFoundError, locate_text_model

    dataset = str(params.get("DATASET", "shop"))
    fast = bool(params.get("FAST"))
    try:
        ds = report_dataset(dataset, params.get("DATA_DIR"), fast, int(params.get("SEED", C.SEED)))
    except DataError as e:
        raise ReportParameterError(f"dataset {dataset!r} cannot be loaded: {e}") from None
    facts = {"items": len(ds.items), "users": len(ds.users)}
    k = params.get("K")
    if k is not None and k > len(ds.items):
        raise ReportParameterError(f"K must be <= {len(ds.items)} (the number of items in {dataset!r}), got {k}")
    frac = params.get("TEST_FRAC")
    if frac is not None:
        split, inner = report_splits(ds.interactions, str(params.get("SPLIT", "global")), frac)
        for what, part in (("test", split.test), ("validation", inner.test)):
            n = part[C.USER].nunique()
            facts[f"{what} users"] = n
            if n < MIN_TEST_USERS:
                raise ReportParameterError(
                    f"TEST_FRAC={frac} leaves {n} user(s) with {what} events in {dataset!r}"
                    + (f" (FAST: {FAST_USERS} sampled users)" if fast else "")
                    + f"; the report needs at least {MIN_TEST_USERS}: raise TEST_FRAC (default 0.2)")
    if "TEXT_MODEL" in params:
        from .runtime import offline as runtime_offline  # the kit's one offline switch
        offline = runtime_offline(default=True)
        try:
            locate_text_model(params["TEXT_MODEL"], offline=offline)  # headless runs are offline unless told not
        except ModelNotFoundError as e:
            raise ReportParameterError(f"TEXT_MODEL: {e}") from None
    return facts


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
            fixed[name] = str(value) if isinstance(value, OneString) else value
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
    elif isinstance(value, str) and not isinstance(value, OneString) and "," in value:
        parts = [p.strip() for p in re.split(r"(?<!\\),", value)]  # escaped commas stay inside their value
        if not any(parts):
            items = []
        elif not all(parts):
            raise ReportParameterError(f"--param {name}={value}: an empty value in the sweep; give values separated "
                                       f"by single commas, {example}")
        else:
            items = [parse_param(f"{name}={p}")[1] for p in parts]
            items = [str(v) if isinstance(v, OneString) else v for v in items]
    else:
        return None
    if not items:
        raise ReportParameterError(f"--param {name}={value!s}: the sweep is empty; give two or more values separated "
                                   f"by commas, {example}")
    if len(items) < 2:
        raise ReportParameterError(f"--param {name}: a sweep needs two or more values, got only {items[0]!r}; "
                                   f"drop the comma for one run")
    return items


def _default_value(info: dict):
    """A parameter's default as the notebook states it (a Python literal), so pre-checks see what the run will."""
    import ast

    try:
        return ast.literal_eval(info["default"])
    except (ValueError, SyntaxError):
        return _UNREADABLE  # an expression (e.g. 2 ** 3): the pre-checks skip it, the notebook computes it


_UNREADABLE = object()
