"""A disk cache of embedding vectors, keyed by content hash: no pickle, atomic writes, safe for several processes.

Not an encoder: it stores and returns vectors for keys it is given. Each write is one ``.npz`` shard (NumPy arrays
only, loaded with ``allow_pickle=False``) carrying its own checksum. The rules it keeps:

- a shard appears whole or not at all (written to a temporary file, then renamed), with the usual umask
  permissions, so a second user sharing the folder can read it;
- several processes may write at once: merging shards ("compaction") holds a ``filelock`` lock, re-reads the shards
  on disk and deletes only those it merged, never a shard another process has just written;
- a shard that is truncated or altered is dropped with a warning and its vectors are computed again; a shard that
  cannot be *read* (permission denied) is not corrupt and is never deleted;
- zero and non-finite vectors are never stored (they would be read back as results forever);
- a folder that cannot be written costs one warning: the vectors stay in memory and the work is never lost.
"""
from __future__ import annotations

import hashlib
import io
import os
import time
import uuid
import warnings
import zipfile
from pathlib import Path

import numpy as np

from . import checks
from .files import atomic_write

LOCK_NAME = ".lock"  # the filelock lock file inside the cache folder
LOCK_TIMEOUT_S = 60.0  # how long a compaction waits for another process's compaction before skipping its own
STALE_TMP_S = 3600.0  # temporary files older than this were left by a crashed writer and are removed on compaction
MAX_KEY_LENGTH = 256  # characters; keys are stored whole (never truncated), so a runaway key is refused instead


def text_key(text: str) -> str:
    """A 32-hex-digit content hash of a text."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def bytes_key(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _checksum(keys: np.ndarray, vectors: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(keys).tobytes())
    h.update(np.ascontiguousarray(vectors).tobytes())
    return h.hexdigest()


def _check_keys(keys, *, unique: bool) -> list[str]:
    keys = checks.sequence("keys", keys, what="string keys")
    for i, k in enumerate(keys):
        if not isinstance(k, str) or not k:
            raise TypeError(f"keys[{i}] must be a non-empty string, got {checks._show(k)} ({type(k).__name__}); "
                            "use cache.text_key(text) or cache.bytes_key(data)")
        if len(k) > MAX_KEY_LENGTH:
            raise ValueError(f"keys[{i}] is {len(k)} characters long, more than {MAX_KEY_LENGTH}: "
                             "pass a hash of the content (cache.text_key), not the content itself")
    if unique:
        checks.unique("keys", keys)
    return keys


def _usable_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows worth storing: finite and not all zero (a zero vector is what a failed encode leaves behind)."""
    if vectors.size == 0:
        return np.ones(len(vectors), dtype=bool)
    return np.isfinite(vectors).all(axis=1) & (np.abs(vectors).max(axis=1) > 0)


class EmbeddingCache:
    """Vectors of one dimension ``dim`` under ``folder``; ``get`` what is there, ``put`` what was computed.

    Merges its shards into one once there are more than ``max_shards`` (under a lock shared by all processes).
    """

    def __init__(self, folder: str | Path, dim: int, max_shards: int = 32):
        if not isinstance(folder, (str, os.PathLike)) or not str(folder):
            raise TypeError(f"folder must be a path to a cache folder, got {checks._show(folder)}")
        self.folder = Path(folder)
        self.dim = checks.integer("dim", dim, min=1)
        self.max_shards = checks.integer("max_shards", max_shards, min=1)
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._read: set[str] = set()  # shard file names already merged into memory
        self._loaded = False
        self.writable = True  # False once a write failed: vectors then stay in memory only
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.folder)!r}, dim={self.dim}, entries={len(self._index)})"

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _lock(self):
        from filelock import FileLock

        return FileLock(str(self.folder / LOCK_NAME), timeout=LOCK_TIMEOUT_S)

    # ---- reading ----------------------------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        try:
            return sorted(self.folder.glob("shard-*.npz")) if self.folder.is_dir() else []
        except OSError:  # a folder we may not list (permissions): nothing to read
            return []

    def _read_shard(self, path: Path):
        """``(keys, vectors), ""`` or ``None, why`` with why one of "vanished", "denied: ...", "corrupt: ..."."""
        try:
            with np.load(path, allow_pickle=False) as z:
                keys, vectors, check = z["keys"], z["vectors"], str(z["checksum"])
        except FileNotFoundError:
            return None, "vanished"  # merged and removed by another process's compaction: not corrupt
        except PermissionError as e:
            return None, f"denied: {e.strerror or e}"
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
            return None, f"corrupt: unreadable ({type(e).__name__}: {e})"
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
            return None, f"corrupt: wrong shape {vectors.shape} for dim {self.dim}"
        if _checksum(keys, vectors) != check:
            return None, "corrupt: checksum mismatch"
        if not np.isfinite(vectors).all():
            return None, "corrupt: non-finite values"
        keys = np.array([k.decode() if isinstance(k, bytes) else str(k) for k in keys.tolist()], dtype=object)
        return (keys, vectors.astype(np.float32, copy=False)), ""

    def _drop_corrupt(self, path: Path, why: str) -> None:
        warnings.warn(f"embedding cache: dropping corrupt shard {path.name} ({why.removeprefix('corrupt: ')}); "
                      "its vectors will be computed again.", RuntimeWarning, stacklevel=4)
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # not ours to delete: it is simply not read

    def _merge(self, keys: np.ndarray, vectors: np.ndarray, source: str) -> None:
        usable = _usable_rows(vectors)
        if not usable.all():
            self._warn_once(f"zero:{source}", f"embedding cache: ignoring {int((~usable).sum())} all-zero vector(s) "
                            f"in {source} (left by an older version's failed encode); they will be computed again.")
        new = [i for i in np.flatnonzero(usable) if keys[i] not in self._index]
        if not new:
            return
        start = len(self._vectors)
        self._vectors = np.concatenate([self._vectors, vectors[new]])
        for j, i in enumerate(new):
            self._index[keys[i]] = start + j

    def _load(self) -> None:
        """Read every shard not read yet. A shard that vanishes meanwhile was merged by another process:
        list again and read the merged one."""
        if self._loaded:
            return
        for _ in range(5):
            vanished = False
            for path in self._shards():
                if path.name in self._read:
                    continue
                shard, why = self._read_shard(path)
                if shard is not None:
                    self._merge(*shard, path.name)
                    self._read.add(path.name)
                elif why == "vanished":
                    vanished = True
                elif why.startswith("denied"):
                    self._warn_once(f"denied:{path.name}", f"embedding cache: cannot read shard {path} ({why[8:]}); "
                                    "it is left in place and its vectors are computed again. Ask its owner to make "
                                    "it readable (chmod a+r), or use your own COURSE_CACHE_DIR.")
                else:
                    self._drop_corrupt(path, why)
            if not vanished:
                break
        self._loaded = True

    def __len__(self) -> int:
        self._load()
        return len(self._index)

    def get(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(found, vectors)``: a boolean mask over ``keys`` and an ``(n, dim)`` array (zeros where missing)."""
        keys = _check_keys(keys, unique=False)
        self._load()
        rows = np.array([self._index.get(k, -1) for k in keys], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        if found.any():
            out[found] = self._vectors[rows[found]]
        return found, out

    # ---- writing ----------------------------------------------------------------------------------------
    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store new vectors as one shard (written to a temporary file, then renamed into place).

        Zero and non-finite rows are skipped with a warning. When the folder cannot be written, one warning says
        so and the vectors are kept in memory only: computed work is never thrown away.
        """
        keys = _check_keys(keys, unique=True)
        vectors = checks.matrix("vectors", vectors, rows=len(keys), cols=self.dim, finite=False)
        if len(keys) == 0:
            return
        usable = _usable_rows(vectors)
        if not usable.all():
            bad = np.flatnonzero(~usable)
            warnings.warn(f"embedding cache: not storing {len(bad)} zero or non-finite vector(s) (keys "
                          f"{[keys[i] for i in bad[:3]]}{' ...' if len(bad) > 3 else ''}): a cache must never "
                          "hand back a failed result.", RuntimeWarning, stacklevel=2)
            keys = [keys[i] for i in np.flatnonzero(usable)]
            vectors = vectors[usable]
            if not keys:
                return
        self._load()
        fresh = [i for i, k in enumerate(keys) if k not in self._index]
        if not fresh:
            return
        keys, vectors = [keys[i] for i in fresh], np.ascontiguousarray(vectors[fresh])
        start = len(self._vectors)
        self._vectors = np.concatenate([self._vectors, vectors])  # in memory first: a failed write loses nothing
        for i, k in enumerate(keys):
            self._index[k] = start + i
        if not self.writable:
            return
        try:
            path = self._write(np.array(keys, dtype=str), vectors)
        except OSError as e:
            self.writable = False
            self._warn_once("unwritable", f"embedding cache: cannot write to {self.folder} "
                            f"({type(e).__name__}: {e.strerror or e}); continuing without a disk cache (vectors are "
                            f"kept in memory for this session). Set COURSE_CACHE_DIR to a writable folder.")
            return
        self._read.add(path.name)
        if len(self._shards()) > self.max_shards:
            self._compact(only_if_needed=True)

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        """One shard, whole or not at all, with the usual (umask) permissions: see ``files.atomic_write``."""
        buf = io.BytesIO()
        np.savez(buf, keys=keys, vectors=vectors, checksum=np.array(_checksum(keys, vectors)))
        return atomic_write(self.folder / f"shard-{uuid.uuid4().hex}.npz", buf.getvalue())

    def compact(self) -> None:
        """Merge all shards on disk into one, under the folder's lock (safe while other processes write)."""
        self._compact(only_if_needed=False)

    def _compact(self, only_if_needed: bool) -> None:
        from filelock import Timeout

        if not self.writable:
            return
        try:
            with self._lock():
                self._compact_locked(only_if_needed)
        except Timeout:
            pass  # another process has been compacting for a minute: its merge will do
        except OSError as e:  # the lock file cannot be created: the folder is not ours to tidy
            self._warn_once("nolock", f"embedding cache: cannot lock {self.folder} ({e.strerror or e}); "
                            "shards are not merged (the cache still works).")

    def _compact_locked(self, only_if_needed: bool) -> None:
        paths = self._shards()
        if len(paths) <= (self.max_shards if only_if_needed else 1):
            return  # another process merged them while we waited for the lock
        merged, keys_all, vecs_all, seen = [], [], [], set()
        for path in paths:
            shard, why = self._read_shard(path)
            if shard is None:
                if why.startswith("corrupt"):
                    self._drop_corrupt(path, why)
                continue  # vanished or unreadable: never deleted by us
            keys, vecs = shard
            keep = [i for i, k in enumerate(keys) if k not in seen and _usable_rows(vecs[i:i + 1])[0]]
            seen.update(keys[keep])
            keys_all.append(keys[keep])
            vecs_all.append(vecs[keep])
            merged.append(path)
        if len(merged) > 1:
            keys = np.array(np.concatenate(keys_all).tolist(), dtype=str)
            new = self._write(keys, np.concatenate(vecs_all))  # in place before any old shard goes
            for p in merged:
                p.unlink(missing_ok=True)
            self._read.add(new.name)
            self._merge(np.concatenate(keys_all), np.concatenate(vecs_all), new.name)
        now = time.time()
        for tmp in self.folder.glob(".shard-*.tmp"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_S:
                    tmp.unlink()
            except OSError:
                pass
