"""The training loop behind :func:`course_lib.finetune.finetune` for the top-layer and LoRA methods: set-up, one step,
validation with early stopping, and the end (best weights back, LoRA merged, folder saved).

What it is: a small trainer in the spirit of minGPT's ``trainer.py``, read top to bottom —
:func:`setup` (model, parameter groups with weight decay by shape, schedule), :class:`Batches` (each distinct text
gets an id; a batch encodes its distinct texts once), :func:`step` (the loss of one batch and one optimiser update),
:class:`Validator` (a score before training and at each evaluation point; the best weights kept), :func:`train`
(the loop that joins them).

What it is not: the settings, the pairs or the model pieces (loading, freezing, LoRA, pooling, InfoNCE): those live
in :mod:`course_lib.finetune`, which calls :func:`train` once its inputs are checked. The adapter method trains in
:mod:`course_lib.adapter` and never comes here.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from . import constants as C
from .encode import _show_progress
from .finetune import (FinetuneConfig, FinetuneResult, _add_hard_negatives, _jsonable, _nullcontext, _Runner,
                       add_lora, discovery_ndcg, freeze_bottom, info_nce, load_encoder, save_model)


# ---------------------------------------------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Setup:
    """What :func:`setup` builds: the model being trained, its runner (texts -> embeddings), the optimiser and its
    schedule, and the pairs (with hard negatives added when asked)."""

    tokenizer: object
    model: object
    live: _Runner
    autocast: object
    groups: list
    log_scale: object
    optim: object
    sched: object
    scaler: object
    pairs: pd.DataFrame
    n_base: int
    steps_per_epoch: int
    total: int


def setup(config: FinetuneConfig, pairs: pd.DataFrame, items: pd.DataFrame, fit_log: pd.DataFrame, device,
          rng: np.random.Generator) -> Setup:
    """Load the encoder, add hard negatives (frozen model), freeze the bottom or add LoRA, and build AdamW with weight
    decay by shape (as nanoGPT chooses it: matrices decay, vectors such as biases and norms don't) and a linear
    warm-up/decay schedule."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    tokenizer, model = load_encoder(config.model)
    model.to(device)
    use_amp = bool(config.amp and device.type == "cuda")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16

    def autocast():
        return torch.autocast(device_type="cuda", dtype=amp_dtype) if use_amp else _nullcontext()

    if config.hard_negatives and "negative" not in pairs.columns:
        frozen = _Runner(tokenizer, model, device, config.max_length, autocast)
        pairs = _add_hard_negatives(pairs, items, fit_log, frozen, config, rng)
    n_base = sum(p.numel() for p in model.parameters())
    if config.method == "lora":
        model = add_lora(model, config.lora_r or 8, config.lora_alpha, config.lora_dropout, config.freeze_layers)
    else:
        freeze_bottom(model, config.freeze_layers)
    live = _Runner(tokenizer, model, device, config.max_length, autocast, n_frozen=config.freeze_layers,
                   cache=config.cache_frozen, budget_mb=config.cache_budget_mb)
    params = [p for p in model.parameters() if p.requires_grad]
    # weight decay by shape, as nanoGPT chooses it: matrices (weights, embeddings) decay; vectors (biases, norms) don't
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    log_scale = None
    if config.learn_scale:
        log_scale = torch.nn.Parameter(torch.tensor(math.log(config.scale), device=device))
        groups.append({"params": [log_scale], "weight_decay": 0.0})
    optim = torch.optim.AdamW(groups, lr=config.lr)
    steps_per_epoch = len(pairs) // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={config.batch_size} is larger than the {len(pairs)} training pairs; "
                         f"pass batch_size <= {len(pairs)}")
    total = steps_per_epoch * config.epochs
    sched = get_linear_schedule_with_warmup(optim, int(config.warmup_frac * total), total)
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    return Setup(tokenizer, model, live, autocast, groups, log_scale, optim, sched, scaler, pairs, n_base,
                 steps_per_epoch, total)


# ---------------------------------------------------------------------------------------------------------------
# batches: each distinct text gets an id; a batch encodes its distinct texts once
# ---------------------------------------------------------------------------------------------------------------
class Batches:
    """The pairs as text ids: ``codes`` (pairs x 2 or 3: anchor, positive [, negative]), the context items' ids of
    each pair (``anchor='mean'``), the catalogue's ids (uniform negatives), and for ``negatives='bank'`` the catalogue
    row each text stands for and each pair's label row."""

    def __init__(self, pairs: pd.DataFrame, items: pd.DataFrame, config: FinetuneConfig):
        cols = ["anchor", "positive"] + (["negative"] if "negative" in pairs.columns else [])
        vocab: dict[str, int] = {}
        self.codes = np.stack([np.array([vocab.setdefault(t, len(vocab)) for t in pairs[c]]) for c in cols], axis=1)
        self.ctx_codes = None
        if config.anchor == "mean":  # each anchor is the mean of its context items' embeddings (a profile)
            if "context_items" not in pairs.columns:
                raise ValueError("anchor='mean' needs pairs with a 'context_items' column (user_pairs builds it); "
                                 "for pairs of texts pass FinetuneConfig(anchor='text')")
            text_of = dict(zip(items[C.ITEM], items[C.TEXT]))
            self.ctx_codes = [np.array([vocab.setdefault(text_of[i], len(vocab)) for i in ctx], dtype=np.int64)
                              for ctx in pairs["context_items"]]
        self.neg_pool = np.array([vocab.setdefault(t, len(vocab)) for t in items[C.TEXT]], dtype=np.int64)
        if config.random_negatives > len(self.neg_pool):
            raise ValueError(f"random_negatives must be <= the number of items ({len(self.neg_pool)}), got "
                             f"{config.random_negatives}: each step draws them without replacement from the catalogue")
        self.texts = list(vocab)
        self.bank_rows = self.label_rows = None
        if config.negatives == "bank":  # a full-catalogue softmax: the label of a pair is its positive's catalogue row
            if "positive_item" not in pairs.columns:
                raise ValueError("negatives='bank' needs pairs with a 'positive_item' column (user_pairs and "
                                 "item_pairs build it); for pairs of free texts pass negatives='random'")
            first_row: dict[int, int] = {}  # text id -> the catalogue row it stands for (the first item with it)
            for r, t in enumerate(items[C.TEXT]):
                first_row.setdefault(vocab[t], r)
            self.bank_rows = np.array([first_row.get(i, -1) for i in range(len(vocab))], dtype=np.int64)
            # a positive whose text another item shares is labelled with the row that stands for that text
            self.label_rows = self.bank_rows[self.codes[:, 1]]


# ---------------------------------------------------------------------------------------------------------------
# one step
# ---------------------------------------------------------------------------------------------------------------
def step(s: Setup, data: Batches, idx: np.ndarray, config: FinetuneConfig, device, rng: np.random.Generator,
         bank=None):
    """The loss of the pairs ``idx`` and one optimiser update; returns (loss, scale) as tensors or floats.

    Anchors are the context items' mean embedding (``anchor='mean'``) or the anchor text's; candidates are the bank
    of every item (``bank`` given) or the batch's positives, hard negatives and ``random_negatives`` uniform items."""
    import torch
    import torch.nn.functional as F

    c = data.codes[idx]  # (B, 2 or 3) text ids
    extra = rng.choice(data.neg_pool, config.random_negatives, replace=False) \
        if config.random_negatives and data.bank_rows is None else np.zeros(0, np.int64)
    ctx = [data.ctx_codes[i] for i in idx] if data.ctx_codes is not None else []
    uniq, inv_all = np.unique(np.concatenate([c.ravel(), extra, *ctx]), return_inverse=True)
    inv = inv_all[:c.size].reshape(c.shape)
    emb = s.live.embed([data.texts[i] for i in uniq])
    if data.ctx_codes is not None:  # anchor = mean of the distinct context items' embeddings (a profile)
        w = torch.zeros(len(idx), len(uniq), device=device)
        start = c.size + len(extra)  # the context codes follow the pairs and the extra negatives
        for r, cc in enumerate(ctx):
            cols = np.unique(inv_all[start:start + len(cc)])
            w[r, cols] = 1.0 / len(cols)
            start += len(cc)
        anchors = w @ emb
    else:
        anchors = emb[torch.as_tensor(inv[:, 0], device=device)]
    scale = s.log_scale.exp().clamp(1.0, 100.0) if s.log_scale is not None else config.scale
    if bank is not None:
        # every candidate, the positive included, comes from the bank: were the batch's own items live, the model
        # could lower the loss by telling live vectors from stale ones instead of learning the task (MoCo keeps its
        # keys from one slow encoder for the same reason); the gradient reaches the model through the anchors, and
        # the item side catches up at each refresh
        logits = scale * F.normalize(anchors.float(), dim=1) @ bank.T
        loss = F.cross_entropy(logits, torch.as_tensor(data.label_rows[idx], device=device))
    else:
        extra_pos = inv_all[c.size:c.size + len(extra)]
        cand_ids = np.concatenate([inv[:, 1]] + ([inv[:, 2]] if c.shape[1] == 3 else []) + [extra_pos])
        cands = emb[torch.as_tensor(cand_ids, device=device)]
        mask = None
        if config.mask_duplicates or len(extra):
            m = cand_ids[None, :] == inv[:, 1][:, None]  # a candidate that is this pair's positive text
            m[np.arange(len(idx)), np.arange(len(idx))] = False
            mask = torch.as_tensor(m, device=device) if m.any() else None
        loss = info_nce(anchors, cands, scale, mask, config.symmetric)
    s.optim.zero_grad(set_to_none=True)
    if s.scaler is not None:
        s.scaler.scale(loss).backward()
        s.scaler.unscale_(s.optim)
    else:
        loss.backward()
    if config.grad_clip:
        torch.nn.utils.clip_grad_norm_([p for g in s.groups for p in g["params"]], config.grad_clip)
    if s.scaler is not None:
        s.scaler.step(s.optim)
        s.scaler.update()
    else:
        s.optim.step()
    s.sched.step()
    return loss, scale


# ---------------------------------------------------------------------------------------------------------------
# evaluation and early stopping
# ---------------------------------------------------------------------------------------------------------------
class Validator:
    """The validation score (``eval_fn(runner)``, or :func:`discovery_ndcg` on the held-out slice; None: no
    validation), the evaluations so far, and the best weights; :meth:`record` says whether training may go on."""

    def __init__(self, model, live: _Runner, items: pd.DataFrame, fit_log, val_log, config: FinetuneConfig,
                 eval_fn=None):
        self.model, self.live, self.items, self.fit_log, self.val_log = model, live, items, fit_log, val_log
        self.config, self.eval_fn = config, eval_fn
        self.item_texts = items[C.TEXT].tolist()
        self.evals: list = []
        self.best = {"val": None, "step": 0, "state": None}

    def score(self) -> float | None:
        if self.eval_fn is not None:
            return float(self.eval_fn(self.live))
        if self.val_log is None:
            return None
        return discovery_ndcg(self.live.encode(self.item_texts), self.items, self.fit_log, self.val_log, 10,
                              self.config.half_life_days)

    def _snapshot(self) -> dict:
        return {n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad}

    def record(self, step: int, epoch: float) -> bool:
        """Evaluate; keep the best weights; True while early stopping allows more steps."""
        val = self.score()
        if val is None:
            return True
        self.evals.append({"step": step, "epoch": epoch, "val": val})
        if self.best["val"] is None or val > self.best["val"]:
            self.best.update(val=val, step=step, state=self._snapshot())
        stale = sum(1 for e in self.evals if e["step"] > self.best["step"])
        return stale < self.config.patience

    def restore_best(self, last_step: int) -> None:
        """Put the best weights back (unless the last step was the best)."""
        import torch

        if self.best["state"] is not None and self.best["step"] != last_step:
            with torch.no_grad():
                for n, p in self.model.named_parameters():
                    if n in self.best["state"]:
                        p.copy_(self.best["state"][n])


def eval_points(steps_per_epoch: int, config: FinetuneConfig) -> set:
    """The steps after which the model is validated: ``evals_per_epoch`` evenly spaced points in each epoch."""
    points = set()
    for e in range(config.epochs):
        for j in range(1, config.evals_per_epoch + 1):
            points.add(e * steps_per_epoch + round(j * steps_per_epoch / config.evals_per_epoch))
    return points


# ---------------------------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------------------------
def train(pairs: pd.DataFrame, items: pd.DataFrame, fit_log, val_log, config: FinetuneConfig, device,
          rng: np.random.Generator, *, out=None, overwrite: bool = False, eval_fn=None, show_progress=None,
          t_start: float | None = None) -> FinetuneResult:
    """Train ``config.model`` on checked ``pairs`` (method ``"top-layers"`` or ``"lora"``): set-up, a validation
    before training, then per epoch a shuffled pass of :func:`step` with validation at :func:`eval_points`; early
    stopping keeps the best weights; LoRA is merged; the model is saved to ``out`` atomically when given."""
    import torch
    from tqdm.auto import tqdm

    from .costs import measure

    t_start = time.perf_counter() if t_start is None else t_start
    s = setup(config, pairs, items, fit_log, device, rng)
    pairs, model, live = s.pairs, s.model, s.live
    data = Batches(pairs, items, config)
    model.train()
    val = Validator(model, live, items, fit_log, val_log, config, eval_fn)
    history = []
    points = eval_points(s.steps_per_epoch, config)

    keep_going = val.record(0, 0.0)
    with measure(device) as cost:  # the training loop's time and the peak memory it adds (the cost table)
        model.train()
        bar = tqdm(total=s.total, desc="fine-tuning", unit="step", disable=not _show_progress(show_progress))
        n_step = 0
        gen = torch.Generator().manual_seed(config.seed)
        train_seconds = 0.0
        for epoch in range(config.epochs):
            if not keep_going:
                break
            perm = torch.randperm(len(pairs), generator=gen).numpy()
            bank = None
            if data.bank_rows is not None:  # the bank: every item's vector under the current weights, no gradients
                t_bank = time.perf_counter()
                bank = torch.from_numpy(live.encode(val.item_texts)).to(device)
                model.train()
                train_seconds += time.perf_counter() - t_bank
            for b in range(s.steps_per_epoch):
                t_step = time.perf_counter()
                idx = perm[b * config.batch_size:(b + 1) * config.batch_size]
                loss, scale = step(s, data, idx, config, device, rng, bank)
                train_seconds += time.perf_counter() - t_step
                n_step += 1
                lval = float(loss.detach())
                if not math.isfinite(lval):
                    bar.close()
                    raise FloatingPointError(f"the loss became {lval} at step {n_step}; lower lr (now {config.lr}) "
                                             "or keep grad_clip on")
                scale_now = float(scale.detach()) if hasattr(scale, "detach") else float(scale)  # learnt: a tensor
                history.append({"step": n_step, "epoch": epoch + (b + 1) / s.steps_per_epoch, "loss": lval,
                                "lr": s.sched.get_last_lr()[0], "scale": scale_now})
                bar.update(1)
                bar.set_postfix(loss=f"{lval:.3f}")
                if n_step in points:
                    keep_going = val.record(n_step, epoch + (b + 1) / s.steps_per_epoch)
                    model.train()
                    if val.evals:
                        bar.set_postfix(loss=f"{lval:.3f}", val=f"{val.evals[-1]['val']:.4f}")
                    if not keep_going:
                        break
    bar.close()
    return finish(s, val, history, n_step, train_seconds, cost.peak_mb, config, out, overwrite, t_start)


def finish(s: Setup, val: Validator, history: list, n_step: int, train_seconds: float, peak_mb, config, out,
           overwrite: bool, t_start: float) -> FinetuneResult:
    """Keep the best weights, merge LoRA, hand back a plain model in eval mode; save atomically to ``out``."""
    val.restore_best(n_step)
    model = s.model
    if config.method == "lora":
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    assert sum(p.numel() for p in model.parameters()) == s.n_base
    best = val.best
    hist = pd.DataFrame(history, columns=["step", "epoch", "loss", "lr", "scale"])
    ev = pd.DataFrame(val.evals, columns=["step", "epoch", "val"])
    s.live.model = model
    result = FinetuneResult(path=None, history=hist, evals=ev, n_pairs=len(s.pairs), seconds=0.0, config=config,
                            best_step=int(best["step"] if best["val"] is not None else n_step),
                            best_val=best["val"], model=model, peak_memory_mb=peak_mb, _runner=s.live)
    if out is not None:
        result.path = save_model(model, s.tokenizer, out, overwrite=overwrite,
                                 meta={"finetune_config": _jsonable(asdict(config)), "n_pairs": len(s.pairs),
                                       "best_step": result.best_step, "best_val": result.best_val,
                                       "steps": n_step, "train_seconds": train_seconds,
                                       "peak_memory_mb": peak_mb,
                                       "seconds": time.perf_counter() - t_start,
                                       "history": hist.to_dict("list"), "evals": ev.to_dict("list")})
    result.seconds = time.perf_counter() - t_start
    result.train_seconds = train_seconds
    return result


__all__ = ["Batches", "Setup", "Validator", "eval_points", "finish", "setup", "step", "train"]
