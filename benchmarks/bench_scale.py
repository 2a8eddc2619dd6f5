"""Scaling benchmark: Ray encoding against one process, ANN indexes at 1M items, memory per Ray worker.

    .venv/bin/python benchmarks/bench_scale.py [--texts 1200] [--items 1000000] [--queries 1000] [--json out.json]

Reports, in one run (ratios, because absolute times on a shared 2-core machine are noisy):
- encode throughput of encode_dataset with 1 and 2 local Ray workers / the single-process TextEncoder, same texts,
  no cache, model loading included on both sides (the Ray figures include starting the workers), best of --repeat
- at --items synthetic items (mixes of the shop's item vectors plus noise) and --queries users: HNSW and IVF-PQ
  build time, memory, recall@10 against exact search and speed-up over the kit's exact top-k
- recommend_all on 2 workers over the same items: time / single-process top_k, and each worker's peak memory,
  resident (RSS) and its own (USS: not shared with other processes): the exact item matrix is shared through the
  object store, a faiss index is copied once per worker (and twice while it is read in: faiss reads the bytes,
  then builds the index from them)
"""
from __future__ import annotations

import argparse
import os
import threading
import time

import numpy as np
import torch

from course_lib import constants as C
from course_lib import scale
from course_lib.data import load_shop
from course_lib.encode import TextEncoder
from course_lib.rank import ExactIndex, recall_vs_exact, top_k

from _common import emit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class WorkerMemory:
    """Samples every Ray worker process (``ray::...``) under this one while a block runs: peak RSS and USS in MiB."""

    def __init__(self, every_s: float = 0.25):
        import psutil

        self.psutil, self.every_s = psutil, every_s
        self.rss: dict[int, float] = {}
        self.uss: dict[int, float] = {}

    def _sample(self):
        for p in self.psutil.Process().children(recursive=True):
            try:
                if not p.name().startswith("ray::") or "Worker" not in p.name():
                    continue  # only the workers doing the job, not Ray's own helpers
                m = p.memory_full_info()
            except (self.psutil.NoSuchProcess, self.psutil.AccessDenied):
                continue
            self.rss[p.pid] = max(self.rss.get(p.pid, 0), m.rss / 2**20)
            self.uss[p.pid] = max(self.uss.get(p.pid, 0), m.uss / 2**20)

    def __enter__(self):
        self._stop = threading.Event()

        def loop():
            while not self._stop.is_set():
                self._sample()
                self._stop.wait(self.every_s)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak(self) -> tuple[float, float]:
        return max(self.rss.values(), default=float("nan")), max(self.uss.values(), default=float("nan"))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--texts", type=int, default=1200, help="texts to encode (the shop's, repeated with a suffix)")
    p.add_argument("--repeat", type=int, default=2, help="runs of each encoding set-up; the best counts")
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--skip-ray-ann", action="store_true", help="do not send the HNSW index to Ray workers")
    p.add_argument("--json")
    args = p.parse_args(argv)
    os.environ.setdefault("COURSE_PROGRESS", "0")
    res = {"threads": torch.get_num_threads(), "cpus": os.cpu_count(), "torch": torch.__version__}
    import faiss
    import ray

    res["ray"], res["faiss"] = ray.__version__, faiss.__version__
    ds = load_shop(os.path.join(ROOT, "data", "shop"))
    base = ds.items[C.TEXT].tolist()
    texts = [f"{t} ({i // len(base)})" if i >= len(base) else t for i, t in
             ((i, base[i % len(base)]) for i in range(args.texts))]

    # 1. encoding: one process against Ray workers, same texts, no cache, model loading counted on both sides;
    #    the three are interleaved and each keeps its best of --repeat, so a busy spell hurts none of them alone
    _, start_s = timed(lambda: scale.connect(dashboard=False))
    res["ray_start_seconds"] = start_s
    res["encode_texts"] = len(texts)
    best = {"single": float("inf"), 1: float("inf"), 2: float("inf")}
    peak = {1: 0.0, 2: 0.0}
    for _ in range(args.repeat):
        best["single"] = min(best["single"], timed(lambda: TextEncoder(cache=False).encode(texts))[1])
        for workers in (1, 2):
            with WorkerMemory() as mem:
                _, s = timed(lambda: scale.encode_dataset(texts, num_workers=workers, cache=False))
            best[workers] = min(best[workers], s)
            peak[workers] = max(peak[workers], mem.peak()[0])
    single_s = best["single"]
    res["encode_single_process_texts_per_s"] = len(texts) / single_s
    for workers in (1, 2):
        res[f"encode_ray_{workers}_workers_texts_per_s"] = len(texts) / best[workers]
        res[f"encode_ray_{workers}_workers_over_single_process"] = single_s / best[workers]
        res[f"encode_ray_{workers}_workers_peak_rss_mib_per_worker"] = peak[workers]
    res["encode_2_workers_over_1_worker"] = (res["encode_ray_2_workers_texts_per_s"]
                                             / res["encode_ray_1_workers_texts_per_s"])

    # 2. ANN at scale: synthetic items built from the shop's real item vectors
    shop_vecs = TextEncoder().encode(base)  # cached after the first run
    items = scale.synthetic_vectors(args.items, shop_vecs, seed=1)
    users = scale.synthetic_vectors(args.queries, shop_vecs, seed=2)
    res["ann_items"], res["ann_queries"], res["dim"] = args.items, args.queries, items.shape[1]
    res["item_matrix_mib"] = items.nbytes / 2**20
    exact = ExactIndex(items)
    exact.search(users[:10], args.k)
    (_, ref), exact_s = timed(lambda: exact.search(users, args.k))
    res["exact_top_k_seconds"] = exact_s
    del exact
    for kind, settings in (("hnsw", {}), ("ivfpq", {})):
        index = scale.build_index(items, kind, **settings)
        (_, got), s = timed(lambda: index.search(users, args.k))
        res[f"{kind}_build_seconds"] = index.build_seconds
        res[f"{kind}_mib"] = index.nbytes / 2**20
        res[f"{kind}_recall_at_{args.k}"] = recall_vs_exact(got, ref)
        res[f"{kind}_speedup_vs_exact"] = exact_s / s
        if kind == "hnsw":
            hnsw = index
        del index

    # 3. recommend_all on 2 workers: the exact matrix shared, the HNSW index copied once per worker
    _, single_s = timed(lambda: top_k(users, items, args.k))
    with WorkerMemory() as mem:
        (_, got), s = timed(lambda: scale.recommend_all(users, items, args.k, num_workers=2, chunk_size=256))
    res["recommend_all_exact_same_lists_as_top_k"] = bool((got == ref).all())
    res["recommend_all_exact_2_workers_over_single_process"] = single_s / s
    rss, uss = mem.peak()
    res["recommend_all_exact_peak_rss_mib_per_worker"], res["recommend_all_exact_peak_uss_mib_per_worker"] = rss, uss
    del items  # the driver's copy: the HNSW index below is sent to the workers without it
    if not args.skip_ray_ann:
        _, single_s = timed(lambda: hnsw.search(users, args.k))
        with WorkerMemory() as mem:
            (_, got), s = timed(lambda: scale.recommend_all(users, hnsw, args.k, num_workers=2, chunk_size=256))
        rss, uss = mem.peak()
        res["recommend_all_hnsw_2_workers_over_single_process"] = single_s / s
        res["recommend_all_hnsw_peak_rss_mib_per_worker"], res["recommend_all_hnsw_peak_uss_mib_per_worker"] = rss, uss
    scale.shutdown()
    return emit(res, args.json)


if __name__ == "__main__":
    main()
