"""Ranking benchmark: exact top-k against plain matmul, the seed-style loop, memory at scale, and faiss.

    .venv/bin/python benchmarks/bench_rank.py [--items 1000000] [--queries 1000] [--dim 384] [--json out.json]

Reports, in one run:
- exact top_k throughput as GFLOP/s-equivalent (2·n·m·d per call) / plain matmul GFLOP/s on the same shapes  target >= 0.7
- speed-up over the seed-style Python loop (on a small slice, extrapolated per query)
- peak memory for --items × --dim items and --queries users, chunked (bounded by rank.MEMORY_BUDGET)
- faiss HNSW recall@10 against exact search, and its speed-up
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from course_lib import rank
from course_lib.encode import timed

from _common import emit



def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    res = {"threads": args.threads, "torch": torch.__version__}
    rng = np.random.default_rng(0)

    # 1. throughput vs plain matmul, on a shape that fits in memory comfortably
    n, m, d = 1000, 100_000, args.dim
    q = rng.standard_normal((n, d), dtype=np.float32)
    items = rng.standard_normal((m, d), dtype=np.float32)
    qt, it = torch.from_numpy(q), torch.from_numpy(items)
    torch.mm(qt[:10], it.T)
    _, t_mm = timed(lambda: torch.mm(qt, it.T), repeat=3)
    index = rank.ExactIndex(items)  # items normalised once, as a served catalogue would be
    index.search(q[:10], args.k)
    _, t_topk = timed(lambda: index.search(q, args.k), repeat=3)
    _, t_oneshot = timed(lambda: rank.top_k(q, items, args.k), repeat=3)
    flops = 2.0 * n * m * d
    res["matmul_gflops"] = flops / t_mm / 1e9
    res["top_k_gflops_equivalent"] = flops / t_topk / 1e9
    res["top_k_over_matmul"] = t_mm / t_topk
    res["one_shot_top_k_over_matmul"] = t_mm / t_oneshot  # includes normalising 100k items on every call

    # 2. the seed-style loop, on a slice (it is ~10^4 times slower), per query
    small_items = items[:2000]
    _, t_loop = timed(lambda: rank.top_k_loop(q[:2], small_items, args.k), repeat=1)
    _, t_fast = timed(lambda: rank.top_k(q[:200], small_items, args.k), repeat=3)
    res["speedup_vs_loop"] = (t_loop / 2) / (t_fast / 200)

    # 3. peak memory at scale: the item matrix itself, plus bounded chunks of scores
    big = rng.standard_normal((args.items, d), dtype=np.float32)
    users = rng.standard_normal((args.queries, d), dtype=np.float32)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    rank.top_k(users, big, args.k)
    t_big = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res["big_items"] = args.items
    res["big_queries"] = args.queries
    res["big_item_matrix_mib"] = big.nbytes / 2**20
    res["full_score_matrix_would_be_mib"] = args.items * args.queries * 4 / 2**20
    res["score_chunk_budget_mib"] = rank.MEMORY_BUDGET / 2**20
    res["peak_rss_growth_mib"] = (rss1 - rss0) / 1024  # ru_maxrss is KiB on Linux
    res["big_seconds"] = t_big

    # 4. faiss HNSW vs exact on 100k items: isotropic random vectors (worst case) and clustered ones (like embeddings)
    centres = rng.standard_normal((2000, d), dtype=np.float32)
    clustered = centres[rng.integers(0, 2000, m)] + 0.5 * rng.standard_normal((m, d), dtype=np.float32)
    cq = centres[rng.integers(0, 2000, n)] + 0.5 * rng.standard_normal((n, d), dtype=np.float32)
    for name, data, queries in (("random", items, q), ("clustered", clustered, cq)):
        try:
            ann, t_build = timed(lambda: rank.ann_index(data, ef_search=64), repeat=1)
        except ImportError as e:
            res["faiss"] = str(e)
            break
        (_, approx), t_ann = timed(lambda: ann.search(queries, args.k), repeat=3)
        exact_index = rank.ExactIndex(data)
        (_, exact), t_exact = timed(lambda: exact_index.search(queries, args.k), repeat=3)
        res[f"faiss_{name}_build_seconds"] = t_build
        res[f"faiss_{name}_recall_at_10"] = rank.recall_vs_exact(approx, exact)
        res[f"faiss_{name}_speedup_vs_exact"] = t_exact / t_ann

    return emit(res, args.json)


if __name__ == "__main__":
    main()
