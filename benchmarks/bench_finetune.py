"""Fine-tuning benchmark: training pairs per second of ``course_lib.finetune`` vs sentence-transformers' own trainer.

    .venv/bin/python benchmarks/bench_finetune.py [--n-pairs 320] [--batch-size 64] [--max-length 48] [--threads N]

Both train the same model (the bundled MiniLM, all weights), with the same loss (InfoNCE / MultipleNegativesRanking-
Loss, scale 20), batch size, max length, threads and pairs (the shop's item pairs), for one epoch, on the CPU.
Each trainer runs in its own fresh process, so its peak memory is its own: "peak RSS growth" = the process's peak
resident memory after training minus its resident memory just before training started (model and data loaded).
Reports the throughput ratio ours / sentence-transformers (target >= 1.0), each peak RSS growth (target <= 2 GB at
batch 64), and our default design (top layer trained, frozen layers cached) for reference.
Absolute times are noisy on a shared machine; the ratio of two runs made one after the other is what to read.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COURSE_PROGRESS", "0")
warnings.filterwarnings("ignore")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def _pairs(n: int):
    from course_lib.data import load_shop, split_by_time
    from course_lib.finetune import item_pairs

    ds = load_shop()
    train = split_by_time(ds.interactions, test_frac=0.2).train
    return ds, item_pairs(train, ds.items, window=3).sample(n, random_state=0).reset_index(drop=True)


def worker(kind: str, n: int, batch: int, max_length: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    ds, pairs = _pairs(n)
    if kind == "st":
        from datasets import Dataset
        from sentence_transformers import (SentenceTransformer, SentenceTransformerTrainer,
                                           SentenceTransformerTrainingArguments)
        from sentence_transformers.losses import MultipleNegativesRankingLoss

        from course_lib.encode import resolve_text_model

        before = _rss_mb()  # both trainers: memory growth counts the model's loading too
        model = SentenceTransformer(resolve_text_model("all-MiniLM-L6-v2"), device="cpu")
        model.max_seq_length = max_length
        data = Dataset.from_dict({"anchor": pairs["anchor"].tolist(), "positive": pairs["positive"].tolist()})
        with tempfile.TemporaryDirectory() as tmp:
            args = SentenceTransformerTrainingArguments(
                output_dir=tmp, num_train_epochs=1, per_device_train_batch_size=batch, learning_rate=5e-5,
                warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, save_strategy="no", report_to=[],
                logging_steps=10_000, use_cpu=True, seed=42, dataloader_drop_last=True, disable_tqdm=True)
            trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                                 loss=MultipleNegativesRankingLoss(model, scale=20.0))
            t0 = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - t0
        steps = n // batch
    else:
        from course_lib.finetune import FinetuneConfig, finetune

        cfg = FinetuneConfig(max_length=max_length, batch_size=batch, epochs=1, val_frac=0.0, max_pairs=None,
                             lr=5e-5, device="cpu", **({"freeze_layers": 0} if kind == "ours" else {}))
        before = _rss_mb()
        res = finetune(None, ds.items, None, cfg, pairs=pairs)
        seconds = res.train_seconds  # the training steps alone, like trainer.train() (no model loading)
        steps = len(res.history)
    return {"pairs_per_s": steps * batch / seconds, "seconds": seconds, "steps": steps,
            "rss_before_mb": before, "peak_growth_mb": _peak_mb() - before}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n-pairs", type=int, default=320)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--worker", choices=["ours", "st", "ours-default"], help=argparse.SUPPRESS)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.n_pairs, args.batch_size, args.max_length, args.threads)))
        return {}

    sys.path.insert(0, os.path.dirname(__file__))
    from _common import emit

    res = {"machine": platform.processor() or platform.machine(), "threads": args.threads, "n_pairs": args.n_pairs,
           "batch_size": args.batch_size, "max_length": args.max_length}
    runs = {}
    for kind in ("ours", "st", "ours-default"):
        cmd = [sys.executable, __file__, "--worker", kind, "--n-pairs", str(args.n_pairs), "--batch-size",
               str(args.batch_size), "--max-length", str(args.max_length), "--threads", str(args.threads)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{kind} worker failed:\n{out.stderr[-3000:]}")
        runs[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    res["ours_pairs_per_s"] = runs["ours"]["pairs_per_s"]
    res["st_trainer_pairs_per_s"] = runs["st"]["pairs_per_s"]
    res["ratio_ours_over_st (target >= 1.0)"] = runs["ours"]["pairs_per_s"] / runs["st"]["pairs_per_s"]
    res["ours_peak_rss_growth_mb (target <= 2048)"] = runs["ours"]["peak_growth_mb"]
    res["st_peak_rss_growth_mb"] = runs["st"]["peak_growth_mb"]
    res["ours_default_design_pairs_per_s (top layer, cached)"] = runs["ours-default"]["pairs_per_s"]
    res["ours_default_design_peak_rss_growth_mb"] = runs["ours-default"]["peak_growth_mb"]
    return emit(res, args.json)


if __name__ == "__main__":
    main()
