"""Atomic file writes: a temporary file in the same folder, renamed into place, so a crash never leaves half a file;
and how a path is shown in an output that others read (never the absolute folders of the machine that wrote it).

Not a cache or a format: bytes, text and JSON go through the same two functions; nothing here uses pickle.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[1]  # the folder holding course_lib/, notebooks/ and data/


def atomic_write(path, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` whole or not at all: a temporary file in the same folder, flushed, then renamed.

    The file gets the usual permissions (``0o666`` minus the umask), like ``open()`` would give it:
    ``tempfile.mkstemp`` would make it private to its writer, which breaks caches and reports shared by a group.
    """
    import uuid

    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _finite(obj):
    """NaN and ±inf become ``None`` (JSON has no such numbers); numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy scalar
        try:
            obj = obj.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path, obj) -> Path:
    """Write JSON atomically; NaN and infinities are written as ``null`` (strict JSON, readable everywhere)."""
    text = json.dumps(_finite(obj), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    return atomic_write(path, text + "\n")


def display_path(path, placeholder: str = "<data>", bases=None) -> str:
    """``path`` as a shared output shows it: relative to the first of ``bases`` that holds it (default: the working
    folder, then the kit's folder, so ``data/shop``), else ``placeholder``. Never an absolute path, which would tell
    a reader the folders of the machine that ran it and mean nothing on theirs."""
    p = Path(path).expanduser().resolve()
    for base in (Path.cwd(), KIT_ROOT) if bases is None else bases:
        try:
            return p.relative_to(Path(base).expanduser().resolve()).as_posix() or "."
        except ValueError:
            continue
    return placeholder
