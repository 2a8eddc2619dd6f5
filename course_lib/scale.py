"""Scaling out: encode a table of texts, build a faiss index and rank every user on a Ray cluster (local or real).

Not a new engine and not new maths: Ray runs the kit's own ``TextEncoder`` and ``ExactIndex`` on workers, and faiss
builds the approximate indexes. The same calls run on a laptop (``connect()`` starts a local cluster) and on a real
cluster (``connect("head-node:6379")`` or ``RAY_ADDRESS``). Ray is optional: ``pip install -e ".[scale]"``.
``build_index`` and ``synthetic_vectors`` need only faiss, not Ray.
"""
from __future__ import annotations

import logging
import math
import os
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from . import checks
from . import constants as C
from .encode import (DEFAULT_TEXT_MODEL, POOLINGS, _check_cache_arg, _check_texts, _position_limit, _show_progress,
                     locate_text_model)
from .runtime import cache_dir, tcp_reachable
from .vectors import unit_rows

INSTALL_HINT = 'pip install -e ".[scale]"'  # from the repository root; `make install` does it too
CONNECT_TIMEOUT_S = 5.0  # seconds to wait for a cluster address to answer before saying it cannot be reached
DEFAULT_GCS_PORT = 6379  # the port `ray start --head` listens on when the address names none
DEFAULT_CLIENT_PORT = 10001  # the port of a "ray://" (Ray Client) address when it names none
MAX_RETRIES = 2  # a worker that dies is restarted and its batch run again this many times; then the job fails
INDEX_KINDS = ("exact", "hnsw", "ivfpq")


class WorkerDiedError(RuntimeError):
    """A Ray worker died (crash, out of memory, node lost) more often than the job retries; nothing was returned."""


# ---- Ray itself: import, connect, shut down --------------------------------------------------------------------
def require_ray():
    """Import Ray, or say in one line how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(f"course_lib.scale needs Ray, which is not installed: {INSTALL_HINT} "
                          "(exact top_k and TextEncoder run without it)") from None
    return ray


@dataclass(frozen=True)
class ClusterInfo:
    """What :func:`connect` joined or started."""

    address: str  # the cluster's address (what other drivers pass to connect / RAY_ADDRESS)
    started_here: bool  # True: a local cluster this process started (shutdown() stops it)
    nodes: int  # machines in the cluster
    cpus: float  # CPU cores Ray may schedule on, all nodes together
    gpus: float  # GPUs, all nodes together
    dashboard_url: str | None  # http://... when the dashboard runs (needs ray[default]), else None


_INFO: ClusterInfo | None = None
NATIVE_LOG_LEVEL = "fatal"  # level of Ray's C++ logs unless RAY_BACKEND_LOG_LEVEL is set


@contextmanager
def _native_stderr_muted():
    """File descriptor 2 points at /dev/null while Ray starts: its C++ side prints notices there (the log level it
    read, for one) that Python's logging cannot silence and a notebook shows in red. Exceptions still propagate."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (an embedded interpreter): nothing to mute
        saved = None
    if saved is None:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def shown_info(info: ClusterInfo) -> dict:
    """``info`` as a dict fit to show or share: a local cluster's address is this machine's network address, so its
    host is written "this machine" (the port stays); a remote address is what you typed and stays as it is."""
    if not isinstance(info, ClusterInfo):
        raise TypeError(f"info must be the ClusterInfo that scale.connect() returns, got {type(info).__name__}")
    out = {f: getattr(info, f) for f in info.__dataclass_fields__}
    if info.started_here and info.address:
        port = info.address.rsplit(":", 1)[-1] if ":" in info.address else ""
        out["address"] = f"this machine:{port}" if port else "this machine"
    return out


def _parse_address(address: str) -> tuple[str, int]:
    """``host:port``, ``ray://host[:port]`` or ``[v6]:port`` -> (host, port); the port defaults as Ray's does."""
    from urllib.parse import urlsplit

    client = address.startswith("ray://")
    rest = address.split("://", 1)[1] if "://" in address else address
    try:
        parts = urlsplit("//" + rest)
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host:
        raise ValueError(f"address must look like 'host:port' or 'ray://host:port', got {address!r}")
    return host, port or (DEFAULT_CLIENT_PORT if client else DEFAULT_GCS_PORT)


def connect(address: str | None = None, *, num_cpus: int | None = None, object_store_mb: int | None = None,
            dashboard: bool | None = None, timeout_s: float = CONNECT_TIMEOUT_S) -> ClusterInfo:
    """Join the Ray cluster at ``address`` (else ``$RAY_ADDRESS``), or start a local one when neither is set.

    - ``address``: ``"host:port"`` (what ``ray start --head`` prints), ``"ray://host:10001"`` (Ray Client),
      ``"auto"`` (a cluster already running on this machine) or ``None``/``"local"``.
    - A remote address that does not answer within ``timeout_s`` seconds fails at once, naming it (Ray itself would
      keep retrying for minutes).
    - ``num_cpus``, ``object_store_mb`` and ``dashboard`` size a *local* cluster (the defaults: every core, 30 % of the
      memory, the dashboard when ``ray[default]`` is installed). On a real cluster its own settings apply.
    - Already connected: returns what was joined (call :func:`shutdown` first to change it).
    """
    global _INFO
    ray = require_ray()
    if address is not None:
        checks.text("address", address, fix="e.g. '192.0.2.10:6379', 'ray://head:10001', 'auto' or None")
    if num_cpus is not None:
        num_cpus = checks.integer("num_cpus", num_cpus, min=1, fix="CPU cores for a local cluster")
    if object_store_mb is not None:
        object_store_mb = checks.integer("object_store_mb", object_store_mb, min=80,
                                         fix="the shared-memory store of a local cluster, in MiB (Ray needs >= 75)")
    if dashboard is not None:
        dashboard = checks.boolean("dashboard", dashboard)
    timeout_s = checks.number("timeout_s", timeout_s, above=0, fix="seconds, e.g. 5")
    if ray.is_initialized():
        if _INFO is None:
            _INFO = _describe(ray, ray.get_runtime_context().gcs_address, started_here=False)
        if address not in (None, "auto", _INFO.address) and not (address == "local" and _INFO.started_here):
            raise ValueError(f"already connected to the Ray cluster at {_INFO.address!r}, not {address!r}: "
                             "call scale.shutdown() first")
        return _INFO
    target = address if address not in (None, "local") else os.environ.get("RAY_ADDRESS") or None
    if address == "local":
        target = None
    source = "address" if address not in (None, "local") else "RAY_ADDRESS"
    quiet = dict(log_to_driver=False, configure_logging=False)  # worker logs: /tmp/ray/session_latest/logs
    # Ray's C++ notices (e.g. core_worker.cc on actors that may restart) go to the driver's stderr, which a notebook
    # shows in red; errors still arrive as Python exceptions. Set RAY_BACKEND_LOG_LEVEL yourself to see them.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", NATIVE_LOG_LEVEL)
    if target is None:
        auth = logging.getLogger("ray._private.authentication.authentication_token_setup")
        level = auth.level
        auth.setLevel(logging.ERROR)  # its notice that a local cluster uses token authentication (Ray's default)
        try:
            with _native_stderr_muted():
                ctx = ray.init(num_cpus=num_cpus, include_dashboard=dashboard,
                               object_store_memory=None if object_store_mb is None else object_store_mb * 2**20,
                               **quiet)
        finally:
            auth.setLevel(level)
        _INFO = _describe(ray, ctx.address_info.get("address", "") or "", started_here=True,
                          dashboard=getattr(ctx, "dashboard_url", None))
        return _INFO
    if target != "auto":
        try:
            host, port = _parse_address(target)
        except ValueError as e:
            raise ValueError(f"{source} {e}") from None
        ok, why = tcp_reachable(host, port, timeout_s)
        if not ok:
            raise ConnectionError(
                f"cannot reach the Ray cluster at {target!r} ({source}) within {timeout_s:g} s: {why}. "
                "Start it with `ray start --head` on that machine and check the host and port it prints, "
                "or call connect() with no address (and RAY_ADDRESS unset) for a local cluster.")
    try:
        with _native_stderr_muted():
            ctx = ray.init(address=target, **quiet)
    except ConnectionError as e:
        raise ConnectionError(f"cannot join the Ray cluster at {target!r} ({source}): {str(e).splitlines()[0]}") \
            from None
    _INFO = _describe(ray, target, started_here=False, dashboard=getattr(ctx, "dashboard_url", None))
    return _INFO


def _describe(ray, address: str, started_here: bool, dashboard: str | None = None) -> ClusterInfo:
    res = ray.cluster_resources()
    url = dashboard or None
    if url and not url.startswith("http"):
        url = "http://" + url
    return ClusterInfo(address=address, started_here=started_here, nodes=len([n for n in ray.nodes() if n["Alive"]]),
                       cpus=float(res.get("CPU", 0)), gpus=float(res.get("GPU", 0)), dashboard_url=url)


def shutdown() -> None:
    """Disconnect; a local cluster started by :func:`connect` stops with all its processes."""
    global _INFO
    try:
        import ray
    except ImportError:
        return
    if ray.is_initialized():
        ray.shutdown()
    _INFO = None


def _ensure_connected(ray) -> ClusterInfo:
    return _INFO if (_INFO is not None and ray.is_initialized()) else connect()


def _check_workers(ray, num_workers, cpus_per_worker, gpus_per_worker) -> tuple[int, float, float]:
    num_workers = checks.integer("num_workers", num_workers, min=1, fix="how many workers (actors) to start")
    cpus = checks.number("cpus_per_worker", cpus_per_worker, above=0, fix="CPU cores per worker, e.g. 1")
    gpus = checks.number("gpus_per_worker", gpus_per_worker, min=0, fix="GPUs per worker: 0, a fraction or 1")
    have = ray.cluster_resources()
    for what, need, key in (("CPU", num_workers * cpus, "CPU"), ("GPU", num_workers * gpus, "GPU")):
        if need > have.get(key, 0) + 1e-9:
            raise ValueError(f"num_workers={num_workers} workers need {need:g} {what}s but the cluster has "
                             f"{have.get(key, 0):g}: lower num_workers or {what.lower()}s_per_worker, or add nodes "
                             "(otherwise the workers would wait for them forever)")
    return num_workers, cpus, gpus


def _deaths(ray) -> tuple:
    """Ray's errors for a worker process or node that is gone (not an exception raised by our own code)."""
    x = ray.exceptions
    return (x.RayActorError, x.WorkerCrashedError, x.NodeDiedError, x.ObjectLostError, x.OutOfMemoryError)


def _died(err, what: str, retries: int, smaller: str) -> WorkerDiedError:
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return WorkerDiedError(f"a Ray worker died while {what} ({type(err).__name__}: {first}) and the job gave up after "
                           f"{retries} restart(s); nothing was returned. Worker logs: /tmp/ray/session_latest/logs "
                           f"on the worker's node (out of memory? try {smaller})")


def _maybe_die(rows, fault) -> None:
    """Test hook: ``fault=(row, marker)`` kills this worker process when it is given ``row``; with a marker file
    path, only the first time (the marker remembers), so a retry succeeds; with ``None``, every time."""
    if fault is None:
        return
    row, marker = fault
    if row in set(np.asarray(rows).tolist()) and (marker is None or not os.path.exists(marker)):
        if marker is not None:
            Path(marker).touch()
        os._exit(1)


@contextmanager
def _quiet_ray_data(ray):
    """Ray Data without its own progress bars and start-up lines (the kit shows one tqdm bar), restored after."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data")  # Ray's own settings
        from ray.data import DataContext

        ctx = DataContext.get_current()
    saved = {k: getattr(ctx, k) for k in ("enable_progress_bars", "print_on_execution_start", "max_errored_blocks")}
    ctx.enable_progress_bars, ctx.print_on_execution_start, ctx.max_errored_blocks = False, False, 0
    log = logging.getLogger("ray.data")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.* is deprecated")  # max_restarts: see below
            warnings.filterwarnings("ignore", message=".*won't fully utilize the available concurrency")
            warnings.filterwarnings("ignore", message=".*Progress bars disabled")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.data")  # Ray's own settings
            yield
    finally:
        for k, v in saved.items():
            setattr(ctx, k, v)
        log.setLevel(level)


# ---- encoding with Ray Data ---------------------------------------------------------------------------------
class _EncodeWorker:
    """One Ray actor: holds one TextEncoder (the model is loaded once per worker, not per batch)."""

    def __init__(self, model, pooling, max_length, batch_size, cache, device, threads, fault):
        import torch

        from .encode import TextEncoder

        torch.set_num_threads(threads)
        self.encoder = TextEncoder(model, pooling, max_length=max_length, batch_size=batch_size, cache=cache,
                                   device=device, show_progress=False)
        self.fault = fault

    def __call__(self, batch: dict) -> dict:
        _maybe_die(batch["row"], self.fault)
        vectors = self.encoder.encode([str(t) for t in batch["text"]])
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vector": vectors}


def encode_dataset(texts, model: str = DEFAULT_TEXT_MODEL, *, column: str = C.TEXT, pooling: str = "mean",
                   max_length: int | None = None, num_workers: int = 2, batch_size: int = 256,
                   encoder_batch_size: int = 64, cpus_per_worker: float = 1, gpus_per_worker: float = 0,
                   cache: bool | str = True, max_retries: int = MAX_RETRIES, show_progress: bool | None = None,
                   _fault=None) -> np.ndarray:
    """Encode a table of texts on Ray workers; returns ``(n, dim)`` float32 in input order, like ``TextEncoder.encode``.

    - ``texts``: a DataFrame (its ``column``), a Series or a list of strings.
    - ``model``: a model id or a folder, e.g. a fine-tuned model saved by ``finetune``; every worker must be able
      to read it (on a real cluster: a shared disk or the same image).
    - Ray Data splits the rows into batches of ``batch_size`` and ``map_batches`` hands them to ``num_workers``
      actors, each holding one ``TextEncoder`` (forward passes of ``encoder_batch_size``); on GPUs set
      ``gpus_per_worker`` (each worker then encodes on ``cuda``).
    - ``cache``: the same rules as ``TextEncoder``; ``True`` is this machine's ``runtime.cache_dir()``, which every
      worker of a local cluster shares (safe: the cache locks between processes). On a real cluster pass a folder
      that all nodes see, or ``False``.
    - A worker that dies is restarted and its batch run again, up to ``max_retries`` times; after that
      :class:`WorkerDiedError`, and no partial result. Every row is checked to come back exactly once.
    """
    texts = _table_texts(texts, column)
    path, _ = locate_text_model(model)  # a missing model fails here in one line, not on every worker
    pooling = checks.choice("pooling", pooling, POOLINGS)
    batch_size = checks.integer("batch_size", batch_size, min=1, fix="texts per Ray batch, e.g. 256")
    encoder_batch_size = checks.integer("encoder_batch_size", encoder_batch_size, min=1,
                                        fix="texts per forward pass, e.g. 64")
    max_retries = checks.integer("max_retries", max_retries, min=0, fix="restarts of a dying worker, e.g. 2")
    cache = _check_cache_arg(cache)
    cache = str(cache_dir() / "text") if cache is True else (str(cache) if cache else False)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)  # checked here once, not on every worker
    if max_length is not None:
        max_length = checks.integer("max_length", max_length, min=2, fix="the number of tokens a text is cut to")
        limit = _position_limit(config)
        if limit is not None and max_length > limit:
            raise ValueError(f"max_length must be <= {limit} for model {model!r} (its max_position_embeddings), "
                             f"got {max_length}")
    if not texts:
        return np.zeros((0, int(config.hidden_size)), dtype=np.float32)
    ray = require_ray()
    _ensure_connected(ray)
    num_workers, cpus, gpus = _check_workers(ray, num_workers, cpus_per_worker, gpus_per_worker)

    import pandas as pd

    n = len(texts)
    per_batch = min(batch_size, math.ceil(n / num_workers))  # enough batches to keep every worker busy
    blocks = [pd.DataFrame({"row": np.arange(s, min(s + per_batch, n), dtype=np.int64), "text": texts[s:s + per_batch]})
              for s in range(0, n, per_batch)]
    out = np.zeros((n, int(config.hidden_size)), dtype=np.float32)
    seen = np.zeros(n, dtype=np.int64)
    from tqdm.auto import tqdm

    bar = tqdm(total=n, desc=f"encoding on {num_workers} Ray worker(s)", unit="text",
               disable=not _show_progress(show_progress))
    try:
        with _quiet_ray_data(ray):
            from ray.data import ActorPoolStrategy

            ds = ray.data.from_pandas(blocks).map_batches(
                _EncodeWorker, batch_size=per_batch, batch_format="numpy", compute=ActorPoolStrategy(size=num_workers),
                fn_constructor_kwargs=dict(model=path, pooling=pooling, max_length=max_length,
                                           batch_size=encoder_batch_size, cache=cache,
                                           device="cuda" if gpus > 0 else "cpu", threads=max(1, int(cpus)),
                                           fault=_fault),
                num_cpus=cpus, num_gpus=gpus or None,
                # Ray Data restarts dying actors forever by default: a worker that always crashes would hang the job.
                # These are Ray "remote args" (deprecated as keywords from Ray 2.60, removed in 2.64: see pyproject).
                max_restarts=max_retries, max_task_retries=max_retries)
            for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                rows = np.asarray(batch["row"])
                out[rows] = np.asarray(batch["vector"], dtype=np.float32)
                np.add.at(seen, rows, 1)
                bar.update(len(rows))
    except _deaths(ray) as e:
        raise _died(e, "encoding", max_retries, "fewer num_workers or a smaller batch_size") from e
    finally:
        bar.close()
    _check_complete(seen, "encode_dataset")
    return out


def _table_texts(texts, column: str) -> list[str]:
    import pandas as pd

    if isinstance(texts, pd.DataFrame):
        checks.text("column", column)
        if column not in texts.columns:
            raise ValueError(f"column {column!r} is not in the table; its columns are {list(texts.columns)}")
        texts = texts[column]
    return _check_texts(texts)


def _check_complete(seen: np.ndarray, who: str) -> None:
    """Every row came back exactly once, or nothing is returned: a partial result is never taken as complete."""
    missing, repeated = np.flatnonzero(seen == 0), np.flatnonzero(seen > 1)
    if len(missing) or len(repeated):
        raise RuntimeError(f"{who}: the cluster returned an incomplete result ({len(missing)} row(s) missing, e.g. "
                           f"{missing[:5].tolist()}; {len(repeated)} repeated); nothing was returned, run it again")


# ---- indexes (faiss; no Ray needed) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class IndexConfig:
    """The trade-off knobs of each index kind; each one buys recall with time or memory."""

    ef_construction: int = 40  # HNSW: candidates kept while linking a new item; more: a better graph, slower build
    hnsw_m: int = 16  # HNSW: links per item; more: higher recall, more memory (4·2·m bytes per item), slower build
    ef_search: int = 64  # HNSW: candidates kept while searching (>= k); more: higher recall, slower queries
    nlist: int | None = None  # IVF: clusters the items are split into; None: 4·sqrt(n), at most train_size / 39
    #                           (k-means wants 39 training items per cluster)
    nprobe: int = 16  # IVF: clusters searched per query; more: higher recall, slower queries (nlist: exact on codes)
    pq_m: int = 48  # PQ: sub-vectors per item, each stored in pq_bits bits; must divide the dimension
    pq_bits: int = 8  # PQ: bits per sub-vector code (8: 256 centroids per sub-space)
    train_size: int = 20_000  # IVF-PQ: items sampled to train the clusters and codebooks (k-means)
    rerank: int = 0  # HNSW/IVF-PQ: re-score rerank·k candidates per query with the exact vectors (faiss
    #                  IndexRefineFlat, which keeps a full copy of them); 0: no re-ranking
    seed: int = C.SEED  # sampling and k-means seed

    def __post_init__(self):
        for name in ("ef_construction", "hnsw_m", "ef_search", "nprobe", "pq_m", "pq_bits", "train_size"):
            checks.integer(name, getattr(self, name), min=2 if name == "hnsw_m" else 1)
        if self.nlist is not None:
            checks.integer("nlist", self.nlist, min=1)
        if self.pq_bits > 16:
            raise ValueError(f"pq_bits must be <= 16, got {self.pq_bits}")
        checks.integer("rerank", self.rerank, min=0, fix="0: no re-ranking; e.g. 4 re-scores 4·k candidates")
        checks.integer("seed", self.seed, min=0, max=2**32 - 1)


def _faiss():
    try:
        import faiss
    except ImportError:
        raise ImportError("indexes need faiss: pip install faiss-cpu (it is in the dev extra: "
                          'pip install -e ".[dev]")') from None
    return faiss


class VectorIndex:
    """A faiss index over unit-length item vectors, searched by inner product (= cosine): see :func:`build_index`."""

    def __init__(self, index, kind: str, config: IndexConfig, build_seconds: float = 0.0):
        self.index, self.kind, self.config, self.build_seconds = index, kind, config, build_seconds

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, items={len(self)}, dim={self.dim}, MiB={self.nbytes / 2**20:.1f})"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    @property
    def nbytes(self) -> int:
        """Bytes the index holds: the vectors or their codes, plus graph links, ids and centroids."""
        return _index_bytes(self.index, self.kind)

    def search(self, query_vecs, k: int, exclude=None, *, ef_search: int | None = None,
               nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, indices)``, each ``(n_queries, k)``, best first, like ``rank.top_k``.

        ``exclude``: per query, item indices to hide (the index is asked for extra results, which are then
        dropped). Missing results are index ``-1`` with score ``-inf``. ``ef_search``/``nprobe`` override the
        built setting for this call.
        """
        faiss = _faiss()
        k = checks.integer("k", k, min=1)
        q = checks.matrix("query_vecs", query_vecs)
        _check_dim(q.shape[1], self.dim, "query_vecs")
        q = _unit_f32(q)
        n = len(self)
        k = min(k, n)
        lists = None
        if exclude is not None:
            lists = _exclude_lists(exclude, len(q), n)
        params = None
        if self.kind == "hnsw":
            ef = self.config.ef_search if ef_search is None else checks.integer("ef_search", ef_search, min=1)
            params = faiss.SearchParametersHNSW(efSearch=ef)
        elif self.kind == "ivfpq":
            probe = self.config.nprobe if nprobe is None else checks.integer("nprobe", nprobe, min=1)
            params = faiss.SearchParametersIVF(nprobe=probe)
        extra = max((len(x) for x in lists), default=0) if lists else 0
        fetch = min(n, k + extra)
        if self.kind == "hnsw":
            params.efSearch = max(params.efSearch, fetch * max(1, self.config.rerank))
        if self.config.rerank and self.kind != "exact":
            params = faiss.IndexRefineSearchParameters(k_factor=float(self.config.rerank), base_index_params=params)
        scores, idx = self.index.search(q, fetch, params=params) if params is not None else self.index.search(q, fetch)
        scores = np.where(idx < 0, -np.inf, scores).astype(np.float32)
        if lists is None:
            return scores[:, :k], idx[:, :k].astype(np.int64)
        out_s = np.full((len(q), k), -np.inf, dtype=np.float32)
        out_i = np.full((len(q), k), -1, dtype=np.int64)
        for r, hide in enumerate(lists):
            keep = (idx[r] >= 0) & ~np.isin(idx[r], hide)
            s, i = scores[r][keep][:k], idx[r][keep][:k]
            out_s[r, :len(s)], out_i[r, :len(i)] = s, i
        return out_s, out_i

    def to_bytes(self) -> np.ndarray:
        """The index as a uint8 array (``faiss.serialize_index``): what the object store shares with workers."""
        return _faiss().serialize_index(self.index)

    def reranked(self, item_vecs, rerank: int = 4) -> "VectorIndex":
        """This index plus an exact re-scoring of ``rerank``·k candidates per query (the same ``item_vecs`` it was
        built from): recall comes back, and so does the memory of the full vectors. The approximate index is shared,
        not rebuilt."""
        faiss = _faiss()
        if self.kind == "exact" or self.config.rerank:
            raise ValueError(f"only an approximate index without re-ranking can be re-ranked, this one is {self!r}")
        rerank = checks.integer("rerank", rerank, min=1, fix="candidates re-scored per result, e.g. 4")
        v = _unit_f32(checks.matrix("item_vecs", item_vecs, rows=len(self), cols=self.dim))
        t0 = time.perf_counter()
        index = faiss.IndexRefineFlat(self.index, faiss.swig_ptr(v))
        index.k_factor = float(rerank)
        out = VectorIndex(index, self.kind, replace(self.config, rerank=rerank), time.perf_counter() - t0)
        out._base = self  # faiss does not own the base index: keep it alive as long as this one
        return out

    @classmethod
    def from_bytes(cls, data, kind: str, config: IndexConfig) -> "VectorIndex":
        faiss = _faiss()
        return cls(faiss.deserialize_index(np.array(data, dtype=np.uint8, copy=False)), kind, config)


def _unit_f32(v: np.ndarray) -> np.ndarray:
    """Unit rows as contiguous float32; rows already of unit length (synthetic_vectors, encoders) are not copied."""
    v = np.ascontiguousarray(v, dtype=np.float32)
    if len(v) and np.abs(np.einsum("ij,ij->i", v, v) - 1).max() < 1e-4:
        return v
    return np.ascontiguousarray(unit_rows(v), dtype=np.float32)


def _check_dim(got: int, dim: int, name: str) -> None:
    if got != dim:
        raise ValueError(f"{name} have {got} dimensions but the index holds {dim}-dimensional item vectors: encode "
                         "users and items with the same encoder (and the same fusion)")


def _exclude_lists(exclude, n_queries: int, n_items: int) -> list[list[int]]:
    if hasattr(exclude, "tocsr"):
        csr = exclude.tocsr()
        if csr.shape[0] != n_queries:
            raise ValueError(f"exclude must have one row per query ({n_queries}), got {csr.shape[0]}")
        return [csr.indices[csr.indptr[r]:csr.indptr[r + 1]].astype(np.int64).tolist() for r in range(n_queries)]
    lists = checks.index_lists("exclude", exclude, n_items, allow_padding=True)
    if len(lists) != n_queries:
        raise ValueError(f"exclude must have one entry per query ({n_queries}), got {len(lists)}")
    return lists


def _index_bytes(index, kind: str) -> int:
    faiss = _faiss()
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexRefine):  # the approximate index plus a full copy of the vectors
        return _index_bytes(index.base_index, kind) + int(index.ntotal * index.refine_index.sa_code_size())
    if kind == "exact":
        return int(index.ntotal * index.code_size)
    if kind == "hnsw":
        h = index.hnsw
        graph = h.neighbors.size() * 4 + h.levels.size() * 4 + h.offsets.size() * 8 + h.assign_probas.size() * 8
        return int(index.ntotal * index.storage.sa_code_size() + graph)
    ivf = faiss.downcast_index(index)
    codes = ivf.ntotal * (ivf.code_size + 8)  # a code and its 64-bit id per item
    centroids = ivf.nlist * ivf.d * 4
    pq = ivf.pq.M * ivf.pq.ksub * ivf.pq.dsub * 4
    return int(codes + centroids + pq)


def build_index(item_vecs, kind: str = "hnsw", config: IndexConfig | None = None, **settings) -> VectorIndex:
    """A faiss index over ``item_vecs`` (normalised here, so inner product = cosine):

    - ``"exact"``: ``IndexFlatIP``, every item scored for every query (the reference; as exact as ``rank.top_k``);
    - ``"hnsw"``: a graph of near neighbours (``hnsw_m``, ``ef_construction``, ``ef_search``): fast, high recall,
      holds every vector plus its links;
    - ``"ivfpq"``: items split into ``nlist`` clusters, each stored as ``pq_m`` one-byte codes; a query visits
      ``nprobe`` clusters: a fraction of the memory, lower recall.

    Settings come from ``config`` (an :class:`IndexConfig`) with keyword overrides, e.g. ``build_index(v, "hnsw",
    ef_search=128)``.
    """
    faiss = _faiss()
    kind = checks.choice("kind", kind, INDEX_KINDS)
    config = _config(config, settings)
    v = _unit_f32(checks.matrix("item_vecs", item_vecs, allow_empty=False))
    n, d = v.shape
    t0 = time.perf_counter()
    if kind == "exact":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
        index.hnsw.efSearch = config.ef_search
    else:
        if d % config.pq_m:
            divisors = [m for m in range(1, min(d, 96) + 1) if d % m == 0]
            raise ValueError(f"pq_m must divide the dimension {d}, got {config.pq_m}; try one of {divisors[-6:]}")
        nlist = config.nlist or max(1, min(int(4 * math.sqrt(n)), min(n, config.train_size) // 39))
        if nlist > n:
            raise ValueError(f"nlist must be at most the number of items ({n}), got {nlist}")
        if n < 2 ** config.pq_bits:
            raise ValueError(f"ivfpq needs at least {2 ** config.pq_bits} items to train its codebooks "
                             f"(pq_bits={config.pq_bits}), got {n}; use kind='hnsw' or 'exact' for so few")
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, config.pq_m, config.pq_bits, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = index.pq.cp.seed = config.seed
        index.cp.niter = index.pq.cp.niter = 10  # k-means iterations: 10 gives nearly the recall of faiss's 25
        index.nprobe = config.nprobe
        index.own_fields = True  # the IVF index keeps its quantizer alive (Python would free it otherwise)
        quantizer.this.disown()
        rng = np.random.default_rng(config.seed)
        sample = v if n <= config.train_size else v[np.sort(rng.choice(n, config.train_size, replace=False))]
        index.train(sample)
    index.add(v)
    built = VectorIndex(index, kind, replace(config, rerank=0), time.perf_counter() - t0)
    if config.rerank and kind != "exact":
        built = built.reranked(v, config.rerank)
        built.build_seconds = time.perf_counter() - t0
    return built


def _config(config: IndexConfig | None, settings: dict) -> IndexConfig:
    if config is not None and not isinstance(config, IndexConfig):
        raise TypeError(f"config must be an IndexConfig or None, got {type(config).__name__}")
    return checks.replace_checked(config or IndexConfig(), "index", **settings)  # validated by __post_init__


def measure_search(index, query_vecs, truth, repeat: int = 3, **search) -> dict:
    """Search ``query_vecs`` (best of ``repeat`` runs, after a short warm-up) and return ``{"ms per query",
    "recall@k"}`` against ``truth``, the exact top-k indices of the same queries (``k`` is its width).
    ``search``: e.g. ``ef_search=32`` or ``nprobe=4``."""
    truth = np.asarray(truth)
    if truth.ndim != 2 or len(truth) != len(query_vecs):
        raise ValueError(f"truth must hold one row of exact top-k indices per query ({len(query_vecs)}), "
                         f"got shape {truth.shape}")
    repeat = checks.integer("repeat", repeat, min=1)
    k = truth.shape[1]
    index.search(query_vecs[:8], k, **search)
    seconds = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        _, got = index.search(query_vecs, k, **search)
        seconds = min(seconds, time.perf_counter() - t0)
    from .rank import recall_vs_exact

    return {"ms per query": 1000 * seconds / max(len(query_vecs), 1), f"recall@{k}": recall_vs_exact(got, truth)}


# ---- top-k for every user, on workers ---------------------------------------------------------------------------
class _RankWorker:
    """One Ray actor: holds the shared item matrix (read-only, not copied) or one copy of a faiss index."""

    def __init__(self, boxed, threads, fault):
        import ray

        kind, payload, config = ray.get(boxed[0])  # the exact matrix arrives as a view of the object store
        if kind == "exact-shared":
            import torch

            from .rank import ExactIndex

            torch.set_num_threads(threads)
            self.index = ExactIndex.from_unit_rows(payload)
        else:
            _faiss().omp_set_num_threads(threads)
            self.index = VectorIndex.from_bytes(payload, kind, IndexConfig(**config))  # faiss needs its own copy
        self.fault = fault

    def rank(self, start: int, queries, k: int, exclude):
        _maybe_die(range(start, start + len(queries)), self.fault)
        scores, idx = self.index.search(queries, k, exclude)
        return start, scores, idx


def recommend_all(user_vecs, items, k: int = 10, *, exclude=None, num_workers: int = 2, chunk_size: int = 1024,
                  cpus_per_worker: float = 1, max_retries: int = MAX_RETRIES, show_progress: bool | None = None,
                  _fault=None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items for every user on Ray workers: ``(scores, indices)`` in user order, like ``rank.top_k``.

    - ``items``: item vectors (array or ``Catalogue``: exact cosine, the same lists as ``top_k``) or a
      :class:`VectorIndex` from :func:`build_index`.
    - The items go into the object store **once** (``ray.put``); each of the ``num_workers`` workers reads them
      from there: a vector matrix is shared read-only between the workers of a node, never copied per task; a
      faiss index is copied once per worker (faiss needs its own memory), never per task.
    - Users travel in chunks of ``chunk_size``; ``exclude`` hides items per user, as in ``top_k``.
    - A worker that dies is restarted and its chunk run again, up to ``max_retries`` times; after that
      :class:`WorkerDiedError` and no partial result.
    """
    from .catalogue import Catalogue
    from .rank import ExactIndex

    k = checks.integer("k", k, min=1)
    chunk_size = checks.integer("chunk_size", chunk_size, min=1, fix="users per task, e.g. 1024")
    max_retries = checks.integer("max_retries", max_retries, min=0, fix="restarts of a dying worker, e.g. 2")
    q = checks.matrix("user_vecs", user_vecs)
    if isinstance(items, VectorIndex):
        dim, n_items = items.dim, len(items)
        _check_dim(q.shape[1], dim, "user_vecs")
        payload = (items.kind, items.to_bytes(), asdict(items.config))
    else:
        vecs = items.require_vectors("recommend_all") if isinstance(items, Catalogue) else items
        if isinstance(items, (str, bytes, dict)) or vecs is None:
            raise TypeError(f"items must be item vectors, a Catalogue or a VectorIndex, got {type(items).__name__}")
        vecs = checks.matrix("items", vecs, allow_empty=False)
        dim, n_items = vecs.shape[1], vecs.shape[0]
        _check_dim(q.shape[1], dim, "user_vecs")
        payload = ("exact-shared", ExactIndex(vecs).items.cpu().numpy(), None)  # normalised once, as top_k does
    lists = _exclude_lists(exclude, len(q), n_items) if exclude is not None else None
    ray = require_ray()
    _ensure_connected(ray)
    num_workers, cpus, _ = _check_workers(ray, num_workers, cpus_per_worker, 0)
    kk = min(k, n_items)
    if len(q) == 0:
        return np.zeros((0, kk), dtype=np.float32), np.zeros((0, kk), dtype=np.int64)
    ref = ray.put(payload)  # one copy in the object store, whatever the number of tasks
    del payload
    worker_cls = ray.remote(_RankWorker).options(num_cpus=cpus, max_restarts=max_retries,
                                                 max_task_retries=max_retries)
    workers = [worker_cls.remote([ref], max(1, int(cpus)), _fault) for _ in range(num_workers)]
    starts = list(range(0, len(q), chunk_size))
    out_s = np.full((len(q), kk), -np.inf, dtype=np.float32)
    out_i = np.full((len(q), kk), -1, dtype=np.int64)
    seen = np.zeros(len(q), dtype=np.int64)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(q), desc=f"ranking on {num_workers} Ray worker(s)", unit="user",
               disable=not _show_progress(show_progress))
    try:
        pending = [workers[j % num_workers].rank.remote(s, q[s:s + chunk_size], kk,
                                                        None if lists is None else lists[s:s + chunk_size])
                   for j, s in enumerate(starts)]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            start, s, i = ray.get(done[0])
            stop = start + len(s)
            out_s[start:stop], out_i[start:stop] = s, i
            seen[start:stop] += 1
            bar.update(len(s))
    except _deaths(ray) as e:
        raise _died(e, "ranking", max_retries, "fewer num_workers or a smaller chunk_size") from e
    finally:
        bar.close()
        for w in workers:
            ray.kill(w)
        del ref
    _check_complete(seen, "recommend_all")
    return out_s, out_i


# ---- a large synthetic catalogue ----------------------------------------------------------------------------
def synthetic_vectors(n: int, base_vecs, *, noise: float = 0.5, seed: int = C.SEED,
                      chunk: int = 100_000) -> np.ndarray:
    """``n`` unit vectors that look like a catalogue's embeddings: each is a random mix of two rows of
    ``base_vecs`` (e.g. the shop's item vectors) plus Gaussian noise of total length ``noise``.

    Built in chunks of ``chunk`` rows, so 1,000,000 × 384 needs its 1.5 GB result and little more. Isotropic random
    vectors would be the worst case for any index (nothing is near anything); real embeddings are clustered.
    """
    n = checks.integer("n", n, min=1)
    base = checks.matrix("base_vecs", base_vecs, allow_empty=False)
    noise = checks.number("noise", noise, min=0)
    seed = checks.integer("seed", seed, min=0, max=2**32 - 1)
    chunk = checks.integer("chunk", chunk, min=1)
    rng = np.random.default_rng(seed)
    d = base.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        a, b = rng.integers(0, len(base), m), rng.integers(0, len(base), m)
        w = rng.uniform(0, 1, (m, 1)).astype(np.float32)
        x = w * base[a] + (1 - w) * base[b]
        x += rng.standard_normal((m, d), dtype=np.float32) * np.float32(noise / math.sqrt(d))
        out[s:s + m] = unit_rows(x)
    return out
