"""A disk cache of embedding vectors, keyed by content hash: no pickle, atomic writes, corruption detected.

Not an encoder: it stores and returns vectors for keys it is given. Each write is one ``.npz`` shard (NumPy arrays
only, loaded with ``allow_pickle=False``) carrying its own checksum; a shard that is truncated or altered is
dropped with a warning and its vectors are simply computed again.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
import warnings
import zipfile
from pathlib import Path

import numpy as np


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


class EmbeddingCache:
    """Vectors of one dimension ``dim`` under ``folder``; ``get`` what is there, ``put`` what was computed.

    Compacts its shards into one once there are more than ``max_shards``.
    """

    def __init__(self, folder: str | Path, dim: int, max_shards: int = 32):
        self.folder = Path(folder)
        self.dim = int(dim)
        self.max_shards = max_shards
        self._index: dict[str, int] = {}
        self._vectors = np.zeros((0, self.dim), dtype=np.float32)
        self._loaded = False

    # ---- reading ----------------------------------------------------------------------------------------
    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob("shard-*.npz")) if self.folder.is_dir() else []

    def _read_shard(self, path: Path):
        try:
            with np.load(path, allow_pickle=False) as z:
                keys, vectors, check = z["keys"], z["vectors"], str(z["checksum"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
            return None, f"unreadable ({type(e).__name__}: {e})"
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
            return None, f"wrong shape {vectors.shape} for dim {self.dim}"
        if _checksum(keys, vectors) != check:
            return None, "checksum mismatch"
        if not np.isfinite(vectors).all():
            return None, "non-finite values"
        return (keys, vectors.astype(np.float32, copy=False)), ""

    def _load(self) -> None:
        if self._loaded:
            return
        keys_all, vecs_all = [], []
        for path in self._shards():
            shard, why = self._read_shard(path)
            if shard is None:
                warnings.warn(f"embedding cache: dropping corrupt shard {path.name} ({why}); "
                              "its vectors will be computed again.", RuntimeWarning, stacklevel=3)
                path.unlink(missing_ok=True)
                continue
            keys_all.append(shard[0])
            vecs_all.append(shard[1])
        if keys_all:
            keys = np.concatenate(keys_all)
            self._vectors = np.concatenate(vecs_all)
            self._index = {k.decode() if isinstance(k, bytes) else str(k): i for i, k in enumerate(keys)}
        self._loaded = True

    def __len__(self) -> int:
        self._load()
        return len(self._index)

    def get(self, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(found, vectors)``: a boolean mask over ``keys`` and an ``(n, dim)`` array (zeros where missing)."""
        self._load()
        rows = np.array([self._index.get(k, -1) for k in keys], dtype=np.int64)
        found = rows >= 0
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        if found.any():
            out[found] = self._vectors[rows[found]]
        return found, out

    # ---- writing ----------------------------------------------------------------------------------------
    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        """Store new vectors as one shard (written to a temporary file, then renamed into place)."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(keys) == 0:
            return
        if vectors.shape != (len(keys), self.dim):
            raise ValueError(f"expected vectors of shape ({len(keys)}, {self.dim}), got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError("refusing to cache non-finite vectors")
        self._load()
        karr = np.array(keys, dtype="S32")
        self._write(karr, vectors)
        start = len(self._vectors)
        self._vectors = np.concatenate([self._vectors, vectors])
        for i, k in enumerate(keys):
            self._index[k] = start + i
        if len(self._shards()) > self.max_shards:
            self.compact()

    def _write(self, keys: np.ndarray, vectors: np.ndarray, name: str | None = None) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        dest = self.folder / (name or f"shard-{uuid.uuid4().hex}.npz")
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, keys=keys, vectors=vectors, checksum=np.array(_checksum(keys, vectors)))
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest

    def compact(self) -> None:
        """Merge all shards into one (the new shard is in place before the old ones are removed)."""
        self._load()
        old = self._shards()
        keys = np.array(list(self._index), dtype="S32")
        vectors = self._vectors[np.array(list(self._index.values()), dtype=np.int64)]
        new = self._write(keys, vectors)
        for p in old:
            if p != new:
                p.unlink(missing_ok=True)
