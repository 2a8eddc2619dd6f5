"""Comparing report runs side by side: their parameters, their metrics, and paired differences where users match.

Not running anything and not a metric: it reads what ``python -m course_lib report`` wrote into each run folder
(``metrics.json``, read and validated by ``runs.read_record``, and ``per_user.csv``). The first run is the reference.
A method present in two runs is compared **pairwise** (``evaluate.paired_ci``: the same users, a bootstrap interval
of the difference) only when both runs used the same split (equal ``split.fingerprint`` in ``metrics.json``) and
the method scored the same users in both; otherwise the comparison says why and shows the runs side by side only,
because a difference between two runs over different users mixes the change of settings with the change of users.
"""
from __future__ import annotations

import html as _html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import constants as C
from .evaluate import GROUPS, N_BOOT, PairedDiff, paired_ci
from .files import atomic_write, display_path
from .runs import RunRecordError, read_record

RUN_FILES = ("metrics.json", "per_user.csv")  # what makes a folder a report run
KEY_COLUMNS = ("method", "user", "group", "segment")  # per_user.csv: who; every other column is a metric
EXTRA_ROWS = {  # rows of the parameter table taken from metrics.json besides its config
    "content space": lambda m: m.get("content_space"),
    "content fallback": lambda m: m.get("content_fallback"),
    "hybrid content share": lambda m: m.get("hybrid_content_share"),
    "users evaluated": lambda m: (m.get("users") or {}).get("evaluated"),
    "split fingerprint": lambda m: _short((m.get("split") or {}).get("fingerprint")),
}


class RunFolderError(ValueError):
    """A folder is not a report run, or the runs cannot be compared at all (said in one line)."""


def _short(fingerprint) -> str | None:
    return None if not fingerprint else str(fingerprint).split(":")[-1][:12]


@dataclass
class Run:
    """One report run: its folder, what its ``metrics.json`` says and its per-user results."""

    label: str
    folder: Path
    info: dict  # metrics.json
    per_user: pd.DataFrame  # per_user.csv: one row per (method, user)

    @property
    def dataset(self) -> str:
        return str(self.info["config"].get("dataset"))

    @property
    def fingerprint(self) -> str | None:
        return (self.info.get("split") or {}).get("fingerprint")

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(self.per_user["method"]))

    @property
    def metrics(self) -> list[str]:
        return [c for c in self.per_user.columns if c not in KEY_COLUMNS]

    def values(self, method: str, metric: str, group: str = "all") -> pd.Series:
        """``metric`` of ``method`` per user (indexed by user id) in ``group``."""
        pu = self.per_user[self.per_user["method"] == method]
        if group != "all":
            pu = pu[pu["group"] == group]
        return pu.set_index("user")[metric]


def load_run(folder, label: str | None = None) -> Run:
    """Read a run folder; anything that is not a finished report run is a :class:`RunFolderError` naming the fix."""
    folder = Path(folder)
    usage = "give folders written by `python -m course_lib report --out DIR`"
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a report run: no such folder; {usage}")
    path = folder / "metrics.json"
    if not path.is_file():
        raise RunFolderError(f"{folder} is not a report run: it has no metrics.json (a finished run has one); {usage}")
    try:
        info = read_record(path)
    except RunRecordError as e:
        raise RunFolderError(f"{e}; {usage}") from None
    csv = folder / "per_user.csv"
    if not csv.is_file():
        raise RunFolderError(f"{folder} has no per_user.csv: it was made before runs could be compared, or is not a "
                             "report run; run the report again")
    try:
        pu = pd.read_csv(csv, dtype={"method": str, "user": str, "group": str, "segment": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise RunFolderError(f"{csv} cannot be read as CSV ({str(e).splitlines()[0]}); run the report again") from None
    missing = [c for c in ("method", "user", "group") if c not in pu.columns]
    if missing:
        raise RunFolderError(f"{csv} lacks column(s) {missing}; found {list(pu.columns)}: not a report's per-user file")
    repeated = int(pu.duplicated(["method", "user"]).sum())
    if repeated:
        raise RunFolderError(f"{csv} has {repeated} repeated (method, user) row(s); each pair must appear once")
    rows = (info.get("per_user") or {}).get("rows")
    if rows is not None and rows != len(pu):
        raise RunFolderError(f"{csv} has {len(pu)} rows but its metrics.json says {rows}: the two files come from "
                             "different runs; run the report again")
    return Run(label or folder.name, folder, info, pu)


@dataclass
class Comparison:
    """Runs side by side (the first is the reference) and their paired differences."""

    runs: list[Run]
    group: str
    parameters: pd.DataFrame  # one row per parameter, one column per run, and "differs"
    metrics: pd.DataFrame  # (metric, method) x runs: the mean over the group's users
    paired: pd.DataFrame  # one row per (metric, method, run): run − reference over the same users, with its interval
    notes: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return self.runs[0].label

    def _sections(self):
        who = "users" if self.group == "all" else f"{self.group} users"
        yield "Parameters", "≠ marks what differs between the runs.", self.parameters
        yield f"Metrics (mean over {'all ' if self.group == 'all' else ''}{who})", "", self.metrics.round(4)
        yield (f"Paired differences against {self.reference}",
               f"run − {self.reference} over the same {who}, with a 95% paired bootstrap interval; "
               "tied: the interval covers 0.", self._paired_shown())

    def _paired_shown(self) -> pd.DataFrame:
        if self.paired.empty:
            return self.paired
        shown = self.paired.copy()
        for c in ("mean (reference)", "mean (run)", "difference", "lo", "hi"):
            shown[c] = shown[c].map(lambda v: "–" if pd.isna(v) else f"{v:+.4f}" if c in ("difference", "lo", "hi")
                                    else f"{v:.4f}")
        return shown.set_index(["metric", "method", "run"])

    def to_text(self) -> str:
        lines = [f"Comparison of {len(self.runs)} runs of {self.runs[0].dataset} "
                 f"(reference: {self.reference}): " + ", ".join(r.label for r in self.runs)]
        lines += [f"note: {n}" for n in self.notes]
        with pd.option_context("display.width", 200, "display.max_columns", 50, "display.max_colwidth", 60):
            for title, caption, table in self._sections():
                lines += ["", title + (f" ({caption})" if caption else ""),
                          table.to_string() if not table.empty else "(none)"]
        return "\n".join(lines)

    def to_html(self) -> str:
        esc = _html.escape
        parts = [f"<h1>Comparison of {len(self.runs)} runs of {esc(self.runs[0].dataset)}</h1>",
                 f"<p>Reference: <b>{esc(self.reference)}</b>. Runs: "
                 + ", ".join(f"<b>{esc(r.label)}</b> (<code>{esc(display_path(r.folder, r.label))}</code>)"
                             for r in self.runs) + "</p>"]
        if self.notes:
            parts.append("<ul class='notes'>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        for title, caption, table in self._sections():
            parts.append(f"<h2>{esc(title)}</h2>" + (f"<p>{esc(caption)}</p>" if caption else ""))
            parts.append(table.to_html(na_rep="–", float_format=lambda v: f"{v:.4f}") if not table.empty
                         else "<p>(none)</p>")
        return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Comparison of {len(self.runs)} runs"
                f"</title><style>{_CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:14px}"
        "th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
        ".notes li{color:#8a4b00}code{background:#f3f3f3;padding:0 3px}")


def compare_runs(folders, metrics=("ndcg", "recall"), group: str = "all", n_boot: int = N_BOOT, seed: int = C.SEED,
                 labels=None) -> Comparison:
    """Load two or more run folders and compare them with the first one (see the module docstring).

    ``metrics``: columns of ``per_user.csv`` to show and pair; ``group``: ``"all"``, ``"returning"`` or ``"new"``
    users. Folders that are not report runs, or runs of different datasets, are a :class:`RunFolderError`.
    """
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise RunFolderError(f"compare needs two or more run folders, got {len(folders)}")
    seen = {}
    for f in folders:
        key = f.resolve()
        if key in seen:
            raise RunFolderError(f"run folder {f} is given twice; give each run once")
        seen[key] = f
    if group not in GROUPS:
        raise RunFolderError(f"--group must be one of {GROUPS}, got {group!r}")
    labels = list(labels) if labels is not None else _labels(folders)
    runs = [load_run(f, label) for f, label in zip(folders, labels)]
    datasets = {r.dataset for r in runs}
    if len(datasets) > 1:
        raise RunFolderError("runs with different datasets (" + ", ".join(f"{r.label}: {r.dataset}" for r in runs)
                             + ") cannot be compared; compare runs of one dataset")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    common = [m for m in runs[0].metrics if all(m in r.metrics for r in runs)]
    unknown = [m for m in metrics if m not in common]
    if unknown or not metrics:
        raise RunFolderError(f"--metric must be among the runs' metrics {common}, got {unknown or metrics}")
    notes: list[str] = []
    return Comparison(runs, group, _parameter_table(runs), _metric_table(runs, metrics, group),
                      _paired_table(runs, metrics, group, n_boot, seed, notes), notes)


def verdicts_side_by_side(folders, labels=None) -> pd.DataFrame:
    """The article's claims as two or more report runs judged them (any datasets: the shop beside MovieLens-100k),
    one row per claim, per run its users, paired difference with its interval, and verdict. The definitions are the
    same in every run, because one function (``verdicts.article_verdicts``) made each table; this only reads the
    runs' ``metrics.json``. A run is labelled by its dataset when the datasets differ, else by its folder."""
    from .verdicts import side_by_side

    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise RunFolderError(f"--verdicts needs two or more run folders, got {len(folders)}")
    runs = [load_run(f, label) for f, label in zip(folders, list(labels) if labels is not None else _labels(folders))]
    by_dataset = len({r.dataset for r in runs}) == len(runs)
    tables = {}
    for r in runs:
        t = pd.DataFrame(r.info.get("verdicts") or [])
        if t.empty:
            raise RunFolderError(f"{display_path(r.folder, r.label)}/metrics.json has no verdicts; run the "
                                 "report again")
        t[["difference", "lo", "hi"]] = t[["difference", "lo", "hi"]].astype(float)  # null in JSON: NaN here
        tables[r.dataset if by_dataset else r.label] = t
    return side_by_side(tables)


def _labels(folders: list[Path]) -> list[str]:
    names = [f.name or str(f) for f in folders]
    if len(set(names)) == len(names):
        return names
    shown = [display_path(f, f"run {i + 1}") for i, f in enumerate(folders)]
    return shown if len(set(shown)) == len(shown) else [f"run {i + 1}" for i in range(len(folders))]


def _parameter_table(runs: list[Run]) -> pd.DataFrame:
    keys = list(dict.fromkeys(k for r in runs for k in r.info["config"]))
    rows = {k: [r.info["config"].get(k) for r in runs] for k in keys}
    rows.update({k: [get(r.info) for r in runs] for k, get in EXTRA_ROWS.items()})
    table = pd.DataFrame({k: ["–" if v is None else str(v) for v in vals] for k, vals in rows.items()},
                         index=[r.label for r in runs]).T
    table.insert(0, "differs", ["≠" if table.loc[k].nunique() > 1 else "" for k in table.index])
    return table


def _metric_table(runs: list[Run], metrics: list[str], group: str) -> pd.DataFrame:
    methods = list(dict.fromkeys(m for r in runs for m in r.methods))
    index = pd.MultiIndex.from_product([metrics, methods], names=["metric", "method"])
    table = pd.DataFrame(index=index, columns=[r.label for r in runs], dtype=float)
    for r in runs:
        for metric in metrics:
            for method in r.methods:
                v = r.values(method, metric, group).dropna()
                table.loc[(metric, method), r.label] = v.mean() if len(v) else np.nan
    return table


def _paired_table(runs, metrics, group, n_boot, seed, notes) -> pd.DataFrame:
    ref, rows = runs[0], []
    for run in runs[1:]:
        if ref.fingerprint is None or run.fingerprint is None:
            old = [r.label for r in (ref, run) if r.fingerprint is None]
            notes.append(f"{' and '.join(old)} has no split fingerprint (made before runs could be compared): "
                         f"{run.label} is not paired with {ref.label}; run the report again to pair them")
            continue
        if run.fingerprint != ref.fingerprint:
            notes.append(f"{run.label} and {ref.label} used different splits (fingerprints {_short(run.fingerprint)} "
                         f"and {_short(ref.fingerprint)}): their test users and items differ, so their differences "
                         "are not paired; read each run's own intervals instead")
            continue
        only = [m for m in run.methods if m not in ref.methods] + [m for m in ref.methods if m not in run.methods]
        if only:
            notes.append(f"{run.label} vs {ref.label}: {', '.join(only)} in one run only, not compared")
        paired = []
        for method in [m for m in ref.methods if m in run.methods]:
            a_users = set(run.values(method, metrics[0], group).index)
            b_users = set(ref.values(method, metrics[0], group).index)
            if a_users == b_users:
                paired.append(method)
            else:
                notes.append(f"{method}: {run.label} scored {len(a_users)} users and {ref.label} {len(b_users)} "
                             f"({len(a_users ^ b_users)} not in both; e.g. another TASK): not paired")
        for metric in metrics:
            for method in paired:
                both = pd.concat({"a": run.values(method, metric, group), "b": ref.values(method, metric, group)},
                                 axis=1).dropna().sort_index()  # users in id order, as Evaluation.compare
                if both.empty:
                    continue
                d, lo, hi = paired_ci(both["a"].to_numpy(), both["b"].to_numpy(), n_boot, seed)
                p = PairedDiff(run.label, ref.label, metric, group, len(both), float(both["a"].mean()),
                               float(both["b"].mean()), d, lo, hi)
                rows.append({"metric": metric, "method": method, "run": run.label, "users": p.n,
                             "mean (reference)": p.mean_b, "mean (run)": p.mean_a, "difference": p.diff,
                             "lo": p.lo, "hi": p.hi, "verdict": p.verdict})
    table = pd.DataFrame(rows, columns=["metric", "method", "run", "users", "mean (reference)", "mean (run)",
                                        "difference", "lo", "hi", "verdict"])
    methods = list(dict.fromkeys(m for r in runs for m in r.methods))
    order = [r.label for r in runs]
    key = {"metric": metrics.index, "method": methods.index, "run": order.index}
    return table.sort_values(["metric", "method", "run"], key=lambda col: col.map(key[col.name]),
                             kind="stable").reset_index(drop=True)  # per metric and method, the runs in order


def write_html(comparison: Comparison, path) -> Path:
    """Write the comparison as one standalone HTML page, atomically."""
    return atomic_write(path, comparison.to_html())
