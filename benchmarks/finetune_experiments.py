"""Fine-tuning experiments on the shop: which design makes fine-tuned text beat frozen text, and by how much.

    .venv/bin/python benchmarks/finetune_experiments.py                 # the design table (minutes per design)
    .venv/bin/python benchmarks/finetune_experiments.py --fast          # the FAST config only
    .venv/bin/python benchmarks/finetune_experiments.py --designs default,top2 --json out.json
    .venv/bin/python benchmarks/finetune_experiments.py --overfit none,wd0.1,freeze5,lora   # small-data curves

Protocol (the DISCOVERY task). ``split_by_time(interactions, test_frac=0.2)``; the fine-tuner carves its own
validation slice from train (``split_by_time(train, test_frac=0.2)``, pairs from the part before it).
For each test user with training history: relevant = their test items that are not among their training items
(users left with none are excluded); every item seen in training is hidden; content profile = recency-weighted mean
of the history item vectors (``profiles.history_profiles``, half_life_days=30, as notebook 06); NDCG@10, recall@10.
new-item recall@10 = recall@10 counting only relevant items with no training interaction at all (ranked among all
items the user has not seen). tail = users with 1-4 training interactions.
Hybrid = w · z(content) + (1 − w) · z(EASE, λ=200), per-user z-scores, w tuned on the validation slice.

Timings are wall-clock on whatever machine runs this; on a shared 2-core machine they are noisy (other jobs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COURSE_PROGRESS", "0")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from course_lib import constants as C  # noqa: E402
from course_lib.baselines import EASE  # noqa: E402
from course_lib.data import load_shop, split_by_time  # noqa: E402
from course_lib.finetune import FAST, FinetuneConfig, discovery_targets, finetune, validation_split  # noqa: E402
from course_lib.metrics import ndcg_at_k, recall_at_k  # noqa: E402
from course_lib.profiles import history_profiles, item_index, seen_items  # noqa: E402
from course_lib.rank import top_k_scores  # noqa: E402
from course_lib.vectors import unit_rows  # noqa: E402

K = 10
HALF_LIFE = 30.0

# the earlier default (item -> co-item pairs, joined-text anchors, in-batch negatives only, top layer trained):
# the designs measured against it in finetune_results.md are written as changes to it
ITEM_PAIRS = {"pair_types": "item", "history_n": 3, "context": "description+history", "anchor": "text",
              "random_negatives": 0, "freeze_layers": 5, "max_pairs": 3000, "lr": 5e-4}

# design name -> changes to the default FinetuneConfig
DESIGNS = {
    "default": {},  # user pairs, profile-shaped (mean) anchor, 128 uniform negatives, top 2 layers
    "fast": "FAST",
    "text-anchor": {"anchor": "text"},  # the history as one joined text instead of the mean of its items
    "no-uniform-neg": {"random_negatives": 0},  # in-batch negatives only
    "top1": {"freeze_layers": 5},
    "item-pairs": ITEM_PAIRS,
    "top2": {**ITEM_PAIRS, "freeze_layers": 4},
    "co1": {**ITEM_PAIRS, "min_cooccurrence": 1},
    "co5": {**ITEM_PAIRS, "min_cooccurrence": 5},
    "lr1e-4": {**ITEM_PAIRS, "lr": 1e-4},
    "full": {**ITEM_PAIRS, "freeze_layers": 0, "lr": 5e-5},
    "lora": {**ITEM_PAIRS, "freeze_layers": 0, "lora_r": 8, "lr": 5e-4},
    "user": {**ITEM_PAIRS, "pair_types": "user"},
    "item+user": {**ITEM_PAIRS, "pair_types": "item+user"},
    "hardneg": {**ITEM_PAIRS, "hard_negatives": True},
    "window1": {**ITEM_PAIRS, "window": 1},
    "len32": {**ITEM_PAIRS, "max_length": 32},
    "batch64": {**ITEM_PAIRS, "batch_size": 64},
    "1epoch": {**ITEM_PAIRS, "epochs": 1},
    "no-val": {**ITEM_PAIRS, "val_frac": 0.0},
}


# the small-data run: few pairs, many epochs, no early stopping, so the curves show what each regulariser does
OVERFIT_BASE = dict(ITEM_PAIRS, max_pairs=256, epochs=8, evals_per_epoch=1, patience=100, batch_size=32,
                    min_cooccurrence=1)
OVERFIT = {
    "none": {"freeze_layers": 0, "weight_decay": 0.0, "lr": 1e-4},
    "wd0.1": {"freeze_layers": 0, "weight_decay": 0.1, "lr": 1e-4},
    "freeze4": {"freeze_layers": 4, "weight_decay": 0.0, "lr": 2e-4},
    "freeze5": {"freeze_layers": 5, "weight_decay": 0.0, "lr": 5e-4},
    "lora": {"freeze_layers": 0, "lora_r": 8, "weight_decay": 0.0, "lr": 5e-4},
}


def overfit_curves(names, ds, split) -> dict:
    """Train loss (mean per epoch) and validation NDCG@10 per epoch, for each regulariser, on 256 pairs."""
    out = {}
    for name in names:
        cfg = replace(FinetuneConfig(), **OVERFIT_BASE, **OVERFIT[name])
        res = finetune(split.train, ds.items, ds.users, cfg)
        h = res.history.assign(ep=np.ceil(res.history["epoch"] - 1e-9).astype(int))
        loss = h.groupby("ep")["loss"].mean()
        ev = res.evals.set_index(np.round(res.evals["epoch"]).astype(int))["val"]
        table = pd.DataFrame({"train_loss": loss, "val_ndcg": ev}).rename_axis("epoch")
        print(f"\n{name}  ({res.seconds:.0f} s; best epoch {res.evals.loc[res.evals.val.idxmax(), 'epoch']:.0f})")
        print(table.to_string(float_format=lambda x: f"{x:.4f}"), flush=True)
        out[name] = table.reset_index().to_dict("list")
    return out


def config_for(name: str) -> FinetuneConfig:
    d = DESIGNS[name]
    return FAST if d == "FAST" else replace(FinetuneConfig(), **d)


# ---- the discovery evaluation ---------------------------------------------------------------------------
def content_scores(item_vecs, items, history, users):
    prof, _ = history_profiles(history, item_vecs, item_index(items), users=users, half_life_days=HALF_LIFE)
    return unit_rows(prof) @ unit_rows(item_vecs).T


def zscore(s):
    mu, sd = s.mean(1, keepdims=True), s.std(1, keepdims=True)
    return np.where(sd > 1e-12, (s - mu) / np.maximum(sd, 1e-12), 0.0)


class Task:
    """Users, relevant sets and masks of one (history, target) discovery task."""

    def __init__(self, items, history, target):
        self.items, self.history = items, history
        self.users, self.relevant = discovery_targets(history, target)
        index = item_index(items)
        self.seen = seen_items(history, index, self.users)
        trained = set(history[C.ITEM])
        self.new_relevant = [{i for i in r if i not in trained} for r in self.relevant]
        n = history.groupby(C.USER).size()
        self.tail = np.array([1 <= n.get(u, 0) <= 4 for u in self.users])
        self.ids = items[C.ITEM].to_numpy()

    def lists(self, scores):
        _, top = top_k_scores(scores, K, exclude=self.seen)
        return [[self.ids[i] for i in row if i >= 0] for row in top]

    def metrics(self, scores) -> dict:
        recs = self.lists(scores)
        tail_recs = [r for r, t in zip(recs, self.tail) if t]
        tail_rel = [r for r, t in zip(self.relevant, self.tail) if t]
        new = recall_at_k(recs, self.new_relevant, K)
        return {"ndcg": ndcg_at_k(recs, self.relevant, K).value, "recall": recall_at_k(recs, self.relevant, K).value,
                "new_recall": new.value, "new_users": new.n_users,
                "tail_ndcg": ndcg_at_k(tail_recs, tail_rel, K).value, "tail_users": len(tail_rel)}


def tune_blend(val: Task, content, collab, grid=np.linspace(0, 1, 11)) -> float:
    zc, ze = zscore(content), zscore(collab)
    best = max(grid, key=lambda w: ndcg_at_k(val.lists(w * zc + (1 - w) * ze), val.relevant, K).value)
    return float(best)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--designs", default="default,fast,top2,user,item+user,hardneg,len32,batch64,lora",
                   help=f"comma-separated, from {list(DESIGNS)}")
    p.add_argument("--fast", action="store_true", help="only the FAST design")
    p.add_argument("--overfit", default=None, help="small-data curves instead: comma-separated regularisers from "
                   f"{list(OVERFIT)}, e.g. --overfit none,wd0.1,freeze5")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--models", default="models/finetune-experiments", help="where fine-tuned folders go")
    p.add_argument("--json", help="also write all results here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    designs = ["fast"] if args.fast else [d.strip() for d in args.designs.split(",") if d.strip()]

    ds = load_shop()
    items = ds.items
    split = split_by_time(ds.interactions, test_frac=0.2)
    if args.overfit:
        curves = overfit_curves([n.strip() for n in args.overfit.split(",")], ds, split)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(curves, f, indent=1, default=float)
        return curves
    vsplit = validation_split(split.train, 0.2)
    test, val = Task(items, split.train, split.test), Task(items, vsplit.train, vsplit.test)
    print(f"test users {len(test.users)} (tail {int(test.tail.sum())}, with new items "
          f"{sum(bool(r) for r in test.new_relevant)}); validation users {len(val.users)}", flush=True)

    ease_test = EASE(items, lam=200).fit(split.train).scores(test.users)
    ease_val = EASE(items, lam=200).fit(vsplit.train).scores(val.users)
    rows = [{"design": "EASE (λ=200)", "seconds": None, "val_ndcg": None, **test.metrics(ease_test)}]

    # frozen text: the bundled MiniLM, no training (at the same max_length the fine-tuned models use)
    t0 = time.perf_counter()
    from course_lib.finetune import _Runner, _nullcontext, load_encoder

    tok, model = load_encoder(FinetuneConfig().model)
    frozen_vecs = _Runner(tok, model, torch.device("cpu"), FinetuneConfig().max_length, _nullcontext).encode(
        items[C.TEXT].tolist())
    del model
    fro_val = content_scores(frozen_vecs, items, vsplit.train, val.users)
    fro = content_scores(frozen_vecs, items, split.train, test.users)
    w = tune_blend(val, fro_val, ease_val)
    rows.append({"design": "frozen MiniLM", "seconds": time.perf_counter() - t0,
                 "val_ndcg": ndcg_at_k(val.lists(fro_val), val.relevant, K).value, **test.metrics(fro)})
    rows.append({"design": f"hybrid frozen+EASE (w={w:.1f})", "seconds": None, "val_ndcg": None,
                 **test.metrics(w * zscore(fro) + (1 - w) * zscore(ease_test))})
    print(pd.DataFrame(rows).to_string(float_format=lambda x: f"{x:.4f}"), flush=True)

    curves = {}
    for name in designs:
        cfg = config_for(name)
        res = finetune(split.train, items, ds.users, cfg, out=os.path.join(args.models, name), overwrite=True)
        vecs = res.encode(items[C.TEXT].tolist())
        ft = content_scores(vecs, items, split.train, test.users)
        ft_val = content_scores(vecs, items, vsplit.train, val.users)
        w = tune_blend(val, ft_val, ease_val)
        row = {"design": name, "seconds": res.seconds, "val_ndcg": res.best_val, "pairs": res.n_pairs,
               "steps": int(res.history["step"].max()) if len(res.history) else 0, "best_step": res.best_step,
               **test.metrics(ft)}
        rows.append(row)
        rows.append({"design": f"hybrid {name}+EASE (w={w:.1f})", "seconds": None, "val_ndcg": None,
                     **test.metrics(w * zscore(ft) + (1 - w) * zscore(ease_test))})
        curves[name] = {"evals": res.evals.to_dict("list"), "loss": res.history["loss"].tolist(),
                        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}}
        print(pd.DataFrame(rows[-2:]).to_string(float_format=lambda x: f"{x:.4f}"), flush=True)

    table = pd.DataFrame(rows)
    base = table.loc[table["design"] == "frozen MiniLM"].iloc[0]
    table["ndcg_x_frozen"] = table["ndcg"] / base["ndcg"]
    table["new_recall_x_frozen"] = table["new_recall"] / base["new_recall"]
    print("\n" + table.drop(columns=["new_users", "tail_users"]).to_string(
        index=False, float_format=lambda x: f"{x:.4f}"))
    out = {"table": table.to_dict("records"), "curves": curves}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
