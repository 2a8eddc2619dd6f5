"""Notebook 07's cost table at a chosen budget, and the class-speed targets of fine-tuning, -> a markdown file.

Every method trains on the same pairs (``finetune.cost_configs``) on the shop's global split and is judged on the
test period, paired against the frozen model and EASE (``costs.cost_table``). Runs are cached like the notebook's
(``finetune_cached``), so a budget trained once is read back. Targets (issue "class speed"): the adapter >= 2x the
frozen content NDCG@10 in <= 60 s of training; the top layer >= 2x in <= 5 minutes.

    .venv/bin/python benchmarks/finetune_costs.py                               # the class budget (512 pairs, 1 epoch)
    .venv/bin/python benchmarks/finetune_costs.py --pairs 4000 --epochs 2 --only "top layer, bank negatives" \\
        --out benchmarks/finetune_costs_top_layer.md
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pairs", type=int, default=512)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--only", nargs="*", help="rows of finetune.cost_configs to run (default: all)")
    p.add_argument("--adapter-full", action="store_true", help="also the adapter preset (ADAPTER, 4000 pairs)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "finetune_costs.md"))
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from course_lib import constants as C
    from course_lib import finetune as ft
    from course_lib.baselines import EASE, Content
    from course_lib.catalogue import Catalogue
    from course_lib.costs import cost_table
    from course_lib.data import load_shop, make_split
    from course_lib.encode import TextEncoder
    from course_lib.evaluate import evaluate
    from course_lib.profiles import description_profiles

    ds = load_shop()
    items, users = ds.items, ds.users
    split = make_split(ds.interactions, "global", 0.2)
    configs = ft.cost_configs(pairs=args.pairs, epochs=args.epochs)
    if args.only:
        configs = {k: v for k, v in configs.items() if k in args.only}
    if args.adapter_full:
        configs["adapter (ADAPTER preset, 4000 pairs)"] = replace(ft.ADAPTER, max_pairs=4000)

    def content(enc):
        cat = Catalogue.from_items(items, enc.encode(items[C.TEXT].tolist()))
        return cat, Content(cat, half_life_days=30.0, user_vecs=description_profiles(users, enc),
                            fallback="description")

    frozen_cat, frozen = content(TextEncoder())
    methods = {"content (frozen)": frozen, "EASE": EASE(frozen_cat)}
    runs = {}
    for name, cfg in configs.items():
        runs[name] = ft.finetune_cached(split.train, items, users, cfg)
        methods[name] = content(TextEncoder(str(runs[name].path)))[1]
        print(f"{name}: {runs[name].train_seconds:.0f} s of training", flush=True)
    ev = evaluate(methods, split.train, split.test, frozen_cat, 10, with_auc=False)
    table = cost_table(runs, configs, ev)
    frozen_ndcg = ev.compare("EASE", "content (frozen)").mean_b
    lines = ["# Fine-tuning costs on the shop", "",
             f"Written by `benchmarks/finetune_costs.py --pairs {args.pairs} --epochs {args.epochs}` on "
             f"{dt.date.today()}: {os.cpu_count()} CPU cores, torch {torch.__version__}, "
             f"{'CUDA' if torch.cuda.is_available() else 'CPU only'}. Frozen content NDCG@10 {frozen_ndcg:.4f}. "
             "Training seconds are the training loop alone, measured while other jobs may have shared the machine.",
             "", "| method | trainable | training s | peak MB | val NDCG | test NDCG | × frozen | vs frozen [95% CI] |"
             " vs EASE [95% CI] |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r in table.iterrows():
        lines.append(f"| {name} | {r['trainable parameters']:,} | {r['training s']:.0f} | {r['peak MB']:.0f} | "
                     f"{r['validation NDCG']:.4f} | {r['test NDCG']:.4f} | {r['test NDCG'] / frozen_ndcg:.2f} | "
                     f"{r['vs frozen']:+.4f} [{r['vs frozen lo']:+.4f}, {r['vs frozen hi']:+.4f}] | "
                     f"{r['vs EASE']:+.4f} [{r['vs EASE lo']:+.4f}, {r['vs EASE hi']:+.4f}] |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
