"""The run record: the ``metrics.json`` a report run writes (schema 2), built, written, read and validated here.

Not the report (``report.py`` runs the notebook that calls :func:`build_record`) and not the comparison (``compare.py``
reads records with :func:`read_record`). The schema is documented in the README ("Report outputs"); :data:`KEYS`
is its list of top-level keys, in the order they are written.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .files import write_json

SCHEMA_VERSION = 2
KEYS = ("schema_version", "config", "notes", "dataset", "content_space", "content_fallback", "hybrid_content_share",
        "finetuned_hybrid_content_share", "k", "task", "users", "unreachable_share", "metrics", "groups", "segments", "methods",  # evaluation_to_dict
        "split", "per_user", "paired", "headlines", "verdicts", "strategy", "fidelity", "llm", "tier_recovery")
LATER_KEYS = ("split", "per_user", "fidelity", "finetuned_hybrid_content_share", "llm")  # added within schema 2: older runs may lack them (readers: absent)
TYPES = {"config": dict, "notes": list, "dataset": dict, "users": dict, "metrics": list, "groups": list,
         "segments": list, "methods": dict, "split": dict, "per_user": dict, "paired": list, "headlines": list,
         "verdicts": list, "strategy": list, "fidelity": list, "tier_recovery": (dict, type(None)),
         "llm": (dict, type(None))}  # llm: optional (LLM=True runs), null when not measured


class RunRecordError(ValueError):
    """A ``metrics.json`` that is not a report's run record of schema 2 (said in one line, with where it is)."""


def _records(table: pd.DataFrame) -> list[dict]:
    return table.reset_index().to_dict(orient="records")


def build_record(config: dict, notes: list, summary: pd.DataFrame, content_space: str, content_fallback,
                 hybrid_content_share: float, ev, n_boot: int, seed: int, split, per_user: dict, paired: list,
                 headlines: list, verdicts: pd.DataFrame, strategy: pd.DataFrame, fidelity: pd.DataFrame,
                 tier_recovery: pd.DataFrame | None, finetuned_hybrid_content_share: float | None = None,
                 llm: dict | None = None) -> dict:
    """The run record of a report (notebook 09's last section), from what the notebook computed.

    ``summary``: ``Dataset.summary()`` (a ``value`` column); ``ev``: the ``evaluate.Evaluation``, summarised with
    ``n_boot`` resamples and ``seed``; ``split``: the ``Split`` (its fingerprint and sizes); ``per_user``: what
    ``evaluate.per_user_to_csv`` returned; ``verdicts``, ``strategy``, ``fidelity``: the report's tables;
    ``tier_recovery``: the recovery summary per segment, or ``None`` (datasets without true tiers);
    ``finetuned_hybrid_content_share``: the fine-tuned hybrid's content weight (``FINETUNE=True``), else ``None``;
    ``llm``: the language model's measurement (``LLM=True``, ``trust.measure``'s summary), else ``None``.
    """
    from .evaluate import evaluation_to_dict

    record = {"schema_version": SCHEMA_VERSION, "config": config, "notes": notes,
              "dataset": {k: (v.item() if hasattr(v, "item") else v) for k, v in summary["value"].items()},
              "content_space": content_space, "content_fallback": content_fallback,
              "hybrid_content_share": float(hybrid_content_share),
              "finetuned_hybrid_content_share": None if finetuned_hybrid_content_share is None
              else float(finetuned_hybrid_content_share),
              **evaluation_to_dict(ev, n_boot=n_boot, seed=seed),
              "split": {"fingerprint": split.fingerprint(), "train interactions": len(split.train),
                        "test interactions": len(split.test)},  # equal fingerprints: the same users, comparable
              "per_user": per_user,
              "paired": paired,
              "headlines": headlines,
              "verdicts": verdicts.to_dict(orient="records"),
              "strategy": _records(strategy),
              "fidelity": _records(fidelity),
              "llm": llm,
              "tier_recovery": None if tier_recovery is None else
              {seg: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
               for seg, row in tier_recovery.iterrows()}}
    return validate(record)


def validate(record, where: str = "metrics.json", complete: bool = True) -> dict:
    """``record`` if it is a run record of schema 2, else a :class:`RunRecordError` naming ``where`` and the fix.

    ``complete=True`` (what is written) requires every key of :data:`KEYS`; ``complete=False`` (what is read)
    accepts records of older runs that lack :data:`LATER_KEYS`. Keys that are present must have their types."""
    if not isinstance(record, dict) or record.get("schema_version") != SCHEMA_VERSION \
            or not isinstance(record.get("config"), dict):
        got = record.get("schema_version") if isinstance(record, dict) else type(record).__name__
        raise RunRecordError(f"{where} is not a report's metrics.json (schema_version {SCHEMA_VERSION} with a config "
                             f"expected, got {got!r})")
    missing = [k for k in KEYS if k not in record and (complete or k not in LATER_KEYS)]
    if missing and complete:
        raise RunRecordError(f"{where} lacks key(s) {missing} of schema {SCHEMA_VERSION}: build it with "
                             "runs.build_record (the README, 'Report outputs', lists the keys)")
    for key, kind in TYPES.items():
        if key in record and not isinstance(record[key], kind):
            want = " or ".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
            raise RunRecordError(f"{where}: {key} must be a {want}, got {type(record[key]).__name__}")
    fingerprint = (record.get("split") or {}).get("fingerprint")
    if fingerprint is not None and not str(fingerprint).startswith("sha256:"):
        raise RunRecordError(f"{where}: split.fingerprint must be 'sha256:...' (Split.fingerprint()), got "
                             f"{fingerprint!r}")
    rows = (record.get("per_user") or {}).get("rows")
    if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int) or rows < 0):
        raise RunRecordError(f"{where}: per_user.rows must be a count >= 0, got {rows!r}")
    return record


def write_record(path, record: dict) -> Path:
    """Validate a complete record and write it as JSON, atomically (non-finite numbers become ``null``)."""
    return write_json(path, validate(record, str(path)))


def read_record(path) -> dict:
    """Read and validate a run's ``metrics.json`` (older schema-2 runs may lack :data:`LATER_KEYS`)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunRecordError(f"{path} is not a report's metrics.json: not JSON ({e})") from None
    return validate(record, str(path), complete=False)
