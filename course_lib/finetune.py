"""Fine-tuning (微调) the text encoder on the interaction log: contrastive pairs, in-batch negatives, early stopping.

What it is: build (anchor text → positive text) pairs from a *training* log — an item and an item the same user
interacted with soon after it, or a user's context (self-description and/or recent items) and their next new item —
and train any Hugging Face encoder on them with InfoNCE (= sentence-transformers' multiple-negatives ranking loss),
regularised by a time-carved validation slice with early stopping, weight decay, frozen bottom layers or LoRA.
The result is a plain model folder that ``TextEncoder(path)`` loads like the bundled MiniLM.

What it is not: a recommender (profiles, ranking and metrics stay in their own modules; the validation score here is
the simplest discovery NDCG@10, or any ``eval_fn`` you pass) and not a trainer for generative models. The training
loop itself (set-up, step, validation) is :mod:`course_lib.trainer`; this module holds the settings, the pairs, the
model pieces it trains with and the public entry points.

Towers: **one shared encoder** (a Siamese model) encodes both sides of every pair. Items and user contexts are
the same kind of text in one language; one encoder keeps users, items and queries in one space, so the rest of the
kit (history profiles, description profiles, cold items, cosine top-k) keeps working with one ``TextEncoder``.
It also halves the parameters that a few thousand pairs must fit, which overfits less than two towers would, and
it saves as one ordinary model folder. (Two towers pay off with very different sides, e.g. short queries against
long documents, and with far more data than a course log has.)

    >>> from course_lib.finetune import FinetuneConfig, finetune
    >>> res = finetune(split.train, ds.items, ds.users, FinetuneConfig(), out="models/minilm-shop")
    >>> enc = TextEncoder(res.path)                # the fine-tuned model, cached under its own key
    >>> res.history, res.evals                     # train loss per step, validation NDCG@10 per evaluation
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from . import checks
from . import constants as C
from .encode import DEFAULT_TEXT_MODEL, resolve_text_model
from .runtime import get_device, set_seed

PAIR_TYPES = ("item", "user", "item+user")
CONTEXTS = ("description+history", "history", "description")
ANCHORS = ("text", "mean")
METHODS = ("adapter", "top-layers", "lora")
NEGATIVES = ("random", "bank")


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of :func:`finetune`. The defaults are the best design measured on the shop within a CPU budget
    (``benchmarks/finetune_results.md``): user pairs (last 5 items -> next new item) whose anchor is the mean of the
    history items' embeddings (a profile, as the recommender builds it), 128 uniform catalogue negatives per step,
    the top 2 of MiniLM's 6 layers trained. :data:`FAST` is a quicker variant for a lecture. Full fine-tuning
    (``freeze_layers=0``) costs ~6x the compute per step."""

    # ---- what trains -------------------------------------------------------------------------------------
    method: str = "top-layers"  # "adapter": a matrix W after pooling, on cached frozen vectors, full-catalogue
    #                             softmax (seconds; :data:`ADAPTER` has its settings); "top-layers": the top
    #                             (6 - freeze_layers) transformer layers; "lora": LoRA adapters of rank lora_r on
    #                             every layer (merged on save). See METHODS and notebook 07's cost table
    # ---- model ------------------------------------------------------------------------------------------
    model: str = DEFAULT_TEXT_MODEL  # HF id or local folder of an *encoder* (BERT-like); default: bundled MiniLM
    max_length: int = 48  # tokens per text in training; shop texts are ~30-45 tokens, longer inputs only cost time
    # ---- training pairs (built from the training log only) --------------------------------------------
    pair_types: str = "user"  # "item": item -> an item the same user took soon after; "user": user context ->
    #                           their next new item; "item+user": both, mixed
    window: int = 3  # item pairs: each event is paired with the next `window` events of the same user
    max_gap_days: float | None = 30.0  # item pairs: ... that happened at most this many days later (None: any gap)
    min_cooccurrence: int = 3  # item pairs: ... and only items that at least this many users took both of
    history_n: int = 5  # user pairs: the context holds the texts of the user's last `history_n` items
    context: str = "history"  # user pairs: what the context text is made of (see CONTEXTS)
    anchor: str = "mean"  # user pairs: "text": the context is one joined text; "mean": the anchor is the mean of the
    #                       distinct context items' embeddings, close to how the kit builds a profile (training ~ use)
    max_pairs: int | None = 4000  # random subsample (seeded) of the pairs to bound the time; None: use all
    hard_negatives: bool = False  # add to each pair one item the frozen model finds close to the anchor but the
    #                               user never took (more signal per step, 1.5x the compute; risk of false negatives)
    hard_negative_ranks: tuple = (10, 60)  # ... drawn from these neighbour ranks of the anchor item (skip the top ten)
    negatives: str = "random"  # "random": in-batch positives + `random_negatives` uniform catalogue items;
    #                            "bank": a softmax over the WHOLE catalogue (as the adapter): every item's vector from
    #                            a bank computed without gradients and refreshed each epoch, the anchors live (the
    #                            gradient flows through them); far more negatives per step at little cost
    random_negatives: int = 128  # items drawn uniformly from the catalogue each step as extra negatives. In-batch
    #                            negatives are positives of other pairs, so popular items are pushed away as often
    #                            as they are pulled in (the model learns lift, not popularity); uniform negatives
    #                            keep how often an item is chosen in the geometry
    # ---- loss ----------------------------------------------------------------------------------------
    scale: float = 20.0  # InfoNCE temperature as a scale: logits = scale * cosine (sentence-transformers' 20)
    learn_scale: bool = False  # True: the scale is a trained parameter (CLIP-style, clamped to [1, 100])
    symmetric: bool = False  # True: also the positive -> anchor direction (averaged), like CLIP
    mask_duplicates: bool = True  # in-batch "negatives" that are the same text as the positive are masked out
    # ---- regularisation ---------------------------------------------------------------------------
    val_frac: float = 0.2  # share of the training log (the latest events) held out to validate on; 0: none
    epochs: int = 3  # passes over the pairs (early stopping may end sooner)
    evals_per_epoch: int = 1  # validation NDCG@10 computed this many times per epoch (and once before training)
    patience: int = 2  # stop after this many evaluations without a better validation score; the best is kept
    weight_decay: float = 0.01  # AdamW decoupled weight decay on matrices (not on vectors: biases, norms); the adapter:
    #                             a pull toward the identity (the frozen model)
    freeze_layers: int = 4  # freeze the embeddings and the bottom N transformer layers (0: train everything;
    #                         with method="lora": the adapters go on the layers above these only);
    #                         the frozen part runs without dropout, as a fixed feature extractor
    cache_frozen: bool = True  # with freeze_layers: keep each distinct text's hidden states after the frozen part
    #                            and run only the top layers each step (same numbers, much less compute)
    cache_budget_mb: int = 1024  # ... at most this much memory for those hidden states (beyond it: recomputed)
    lora_r: int = 0  # method="lora": the rank of the LoRA adapters (参数高效; 0: 8), merged on save
    lora_alpha: float = 16.0  # LoRA scaling numerator (the update is scaled by alpha / r)
    lora_dropout: float = 0.1  # dropout on the LoRA branch
    # ---- optimiser and running --------------------------------------------------------------------
    batch_size: int = 32  # pairs per step; each pair's positive is a negative for the other pairs in the batch
    lr: float = 3e-4  # peak learning rate (full fine-tuning: ~5e-5; LoRA wants more, e.g. 5e-4)
    warmup_frac: float = 0.1  # share of the steps with a linear warm-up, then linear decay to 0
    grad_clip: float = 1.0  # clip the gradient norm to this (None or 0: no clipping)
    seed: int = C.SEED  # pairs subsample, shuffling, dropout, LoRA init
    device: str = "auto"  # "auto", "cpu" or "cuda"; mixed precision (autocast) is used on CUDA
    amp: bool = True  # autocast on CUDA (bf16 where supported, else fp16 with a gradient scaler); ignored on CPU
    half_life_days: float | None = 30.0  # validation profiles: recency weighting, as notebook 06 uses

    def __post_init__(self):
        """Every setting is checked when the config is made (and by ``dataclasses.replace``): a bad value fails here,
        with its name, its value and the fix, before any model loads."""
        config = self
        checks.integer("batch_size", config.batch_size, min=2,
                       fix="in-batch negatives need at least two pairs per batch; 16-64 is usual")
        checks.number("lr", config.lr, above=0, fix="a learning rate such as 5e-5 (LoRA: 5e-4)")
        checks.integer("max_length", config.max_length, min=4)
        checks.integer("epochs", config.epochs, min=1)
        checks.integer("evals_per_epoch", config.evals_per_epoch, min=1)
        checks.integer("patience", config.patience, min=1)
        checks.number("weight_decay", config.weight_decay, min=0)
        checks.number("warmup_frac", config.warmup_frac, min=0, below=1)
        checks.number("scale", config.scale, above=0, fix="sentence-transformers uses 20")
        checks.number("val_frac", config.val_frac, min=0, below=1)
        checks.integer("freeze_layers", config.freeze_layers, min=0)
        checks.integer("lora_r", config.lora_r, min=0)
        checks.choice("method", config.method, METHODS)
        checks.choice("negatives", config.negatives, NEGATIVES)
        if config.lora_r and config.method != "lora":
            raise ValueError(f"lora_r={config.lora_r} is set but method={config.method!r}; pass method='lora' to train "
                             "LoRA adapters (lora_r is their rank)")
        if config.method == "adapter" and config.anchor != "mean":
            raise ValueError(f"method='adapter' trains on cached item vectors, so the anchor must be the mean of the "
                             f"context items' vectors; got anchor={config.anchor!r}. Pass anchor='mean' (the default)")
        checks.choice("pair_types", config.pair_types, PAIR_TYPES)
        checks.choice("context", config.context, CONTEXTS)
        checks.choice("anchor", config.anchor, ANCHORS)
        checks.integer("random_negatives", config.random_negatives, min=0)
        if config.anchor == "mean" and (config.pair_types != "user" or config.context != "history"):
            raise ValueError(f"anchor='mean' averages the history items of user pairs; got pair_types="
                             f"{config.pair_types!r}, context={config.context!r}. Pass pair_types='user', context='history'")
        if config.max_pairs is not None:
            checks.integer("max_pairs", config.max_pairs, min=2, fix="or None for all pairs")
        if config.grad_clip:
            checks.number("grad_clip", config.grad_clip, above=0, fix="or None for no clipping")
        lo, hi = config.hard_negative_ranks
        if not 0 <= lo < hi:
            raise ValueError(f"hard_negative_ranks must be (low, high) with 0 <= low < high, got {config.hard_negative_ranks}")


ADAPTER = replace(FinetuneConfig(), method="adapter", epochs=8, batch_size=128, lr=3e-3, weight_decay=0.0,
                  patience=2)
"""The linear adapter (:mod:`course_lib.adapter`): the same 4,000 pairs as the default, W trained on cached frozen
vectors with a softmax over the whole catalogue. Seconds on a laptop CPU; measured on the shop in notebook 07."""

def preset(method: str) -> FinetuneConfig:
    """The kit's settings for each method: ``"adapter"`` (:data:`ADAPTER`), ``"top-layers"`` (the default
    :class:`FinetuneConfig`: the top 2 layers, 128 random negatives) or ``"lora"`` (rank 8 on every layer)."""
    checks.choice("method", method, METHODS)
    if method == "adapter":
        return ADAPTER
    if method == "lora":
        return replace(FinetuneConfig(), method="lora", freeze_layers=0, lora_r=8, lr=5e-4)
    return FinetuneConfig()


def cost_configs(model: str = DEFAULT_TEXT_MODEL, pairs: int = 256, epochs: int = 1, seed: int = C.SEED) -> dict:
    """The rows of notebook 07's cost table (计算成本高): each kind of adaptation on **the same** ``pairs`` training
    pairs (the same seed, pair settings and subsample), in batches of 32: the transformer rows for ``epochs`` epochs,
    the adapter for at least :data:`ADAPTER`'s epochs (its steps cost milliseconds, so a class can afford them).
    ``make warm`` trains the class budget (256 pairs, 1 epoch) so the notebook reads them back."""
    top = replace(FinetuneConfig(), model=model, seed=seed, max_pairs=pairs, epochs=epochs, patience=epochs,
                  batch_size=32)
    adapter_epochs = max(epochs, ADAPTER.epochs)
    return {"adapter (W after pooling)": replace(top, method="adapter", lr=ADAPTER.lr, weight_decay=0.0,
                                                 epochs=adapter_epochs, patience=adapter_epochs),
            "top layer, bank negatives": replace(top, freeze_layers=5, negatives="bank"),
            "top 2 layers, 128 random negatives": replace(top, freeze_layers=4),
            "LoRA rank 8, top 2 layers": replace(top, method="lora", freeze_layers=4, lora_r=8, lr=5e-4)}


def overfit_configs(model: str = DEFAULT_TEXT_MODEL, pairs: int = 128, epochs: int = 20, seed: int = C.SEED) -> dict:
    """Notebook 07's overfitting runs, on the adapter (seconds each): ``pairs`` pairs, a high learning rate, many
    ``epochs`` and no remedy; then the same with early stopping, and with weight decay toward the frozen model."""
    small = replace(ADAPTER, model=model, seed=seed, max_pairs=pairs, epochs=epochs, batch_size=32, lr=1e-2,
                    patience=epochs)
    return {"no remedy": small,
            "early stopping (patience 2)": replace(small, patience=2),
            "weight decay 1.0 (toward the frozen W)": replace(small, weight_decay=1.0)}


FAST = replace(FinetuneConfig(), max_pairs=2000, epochs=2, freeze_layers=5, random_negatives=64, patience=1)
"""A quicker variant for a lecture: half the pairs, two epochs, the top layer only, 64 uniform negatives. Measured on
the shop (benchmarks/finetune_results.md): content NDCG@10 1.63x frozen, against 2.34x for the default, in about
a third of its training time."""


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns: where the model is, and the curves to plot."""

    path: Path | None  # the saved model folder (load it with TextEncoder(path)); None when out=None
    history: pd.DataFrame  # one row per step: step, epoch, loss, lr, scale
    evals: pd.DataFrame  # one row per evaluation: step, epoch, val (validation score; step 0 = before training)
    best_step: int  # the step whose weights were kept (0: the starting model was never beaten)
    best_val: float | None  # its validation score (None without validation)
    n_pairs: int  # training pairs used
    seconds: float  # wall time of the whole call
    train_seconds: float = 0.0  # of which: the training steps alone (no loading, no evaluations)
    peak_memory_mb: float | None = None  # peak memory the training loop added (CPU: resident memory; CUDA: allocator)
    config: FinetuneConfig = field(default_factory=FinetuneConfig)
    model: object = None  # the trained torch model (in memory, merged if LoRA), for callers who skip saving
    adapter: np.ndarray | None = None  # method="adapter": the learnt W (dim x dim; vectors are v @ W, then unit)
    _runner: object = field(default=None, repr=False)

    def encode(self, texts) -> np.ndarray:
        """Encode with the trained model in memory: (n, dim) unit rows, like ``TextEncoder(path).encode``
        (reuses the frozen layers' cached states, so it is faster than reloading the folder)."""
        if self._runner is None:
            if self.path is None:
                raise ValueError("this result holds no model and no folder; run finetune again with out=...")
            from .encode import TextEncoder

            return TextEncoder(str(self.path), max_length=self.config.max_length).encode(texts)
        return self._runner.encode(texts)


# ---------------------------------------------------------------------------------------------------------------
# training pairs
# ---------------------------------------------------------------------------------------------------------------
PAIR_COLUMNS = ("anchor", "positive")  # text columns every pair table has; "negative" is optional


def _ordered(train: pd.DataFrame, items: pd.DataFrame, name: str = "train") -> pd.DataFrame:
    """The log sorted by user, then time (stable), with unknown items refused."""
    missing = [c for c in (C.USER, C.ITEM, C.TIMESTAMP) if c not in train.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}; it needs {C.USER}, {C.ITEM}, {C.TIMESTAMP} "
                         f"(found {list(train.columns)})")
    if C.ITEM not in items.columns or C.TEXT not in items.columns:
        raise ValueError(f"items must have columns {C.ITEM!r} and {C.TEXT!r}; Dataset.items has both "
                         f"(found {list(items.columns)})")
    known = set(items[C.ITEM])
    unknown = ~train[C.ITEM].isin(known)
    if unknown.any():
        bad = pd.unique(train.loc[unknown, C.ITEM])
        raise ValueError(f"{name} has {int(unknown.sum())} interaction(s) with item(s) missing from items, e.g. "
                         f"{list(bad[:5])}; pass the items table these ids come from, or drop those rows")
    ts = pd.to_datetime(train[C.TIMESTAMP])
    df = train.assign(**{C.TIMESTAMP: ts})
    order = np.lexsort((np.arange(len(df)), ts.to_numpy(), df[C.USER].astype(str).to_numpy()))
    return df.iloc[order].reset_index(drop=True)


def item_pairs(train: pd.DataFrame, items: pd.DataFrame, window: int = 3, max_gap_days: float | None = 30.0,
               min_cooccurrence: int = 1) -> pd.DataFrame:
    """(item → an item the same user interacted with soon after it) pairs, from a training log.

    Each event is paired with each of the user's next ``window`` events that came at most ``max_gap_days`` later
    and is another item. The anchor is always the earlier event, so no pair reaches forward past its target.
    ``min_cooccurrence``: keep only pairs of items that at least this many distinct users took both of (in
    ``train``): a user's next item is often from another of their interests, and items many users share are
    much more often truly related (on the shop: 30% same subcategory for all pairs, 56% at 3 users, 74% at 5).
    Returns columns ``user_id, anchor_item, positive_item, anchor_time, positive_time, anchor, positive``
    (the last two are the item texts).
    """
    window = checks.integer("window", window, min=1)
    if max_gap_days is not None:
        checks.number("max_gap_days", max_gap_days, above=0, fix="pass None for no limit")
    df = _ordered(train, items)
    users, its, ts = df[C.USER].to_numpy(), df[C.ITEM].to_numpy(), df[C.TIMESTAMP].to_numpy()
    parts = []
    for d in range(1, window + 1):
        a, b = np.arange(len(df) - d), np.arange(d, len(df))
        ok = (users[a] == users[b]) & (its[a] != its[b])
        if max_gap_days is not None:
            ok &= (ts[b] - ts[a]) <= np.timedelta64(int(max_gap_days * 86400), "s")
        parts.append((a[ok], b[ok]))
    a = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, int)
    b = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, int)
    order = np.lexsort((b, a))
    a, b = a[order], b[order]
    if checks.integer("min_cooccurrence", min_cooccurrence, min=1) > 1 and len(a):
        ui = df[[C.USER, C.ITEM]].drop_duplicates()
        both = ui.merge(ui, on=C.USER)
        co = both.groupby([f"{C.ITEM}_x", f"{C.ITEM}_y"]).size()
        n = co.reindex(pd.MultiIndex.from_arrays([its[a], its[b]])).to_numpy()
        keep = n >= min_cooccurrence
        a, b = a[keep], b[keep]
    text = dict(zip(items[C.ITEM], items[C.TEXT]))
    out = pd.DataFrame({C.USER: users[a], "anchor_item": its[a], "positive_item": its[b],
                        "anchor_time": ts[a], "positive_time": ts[b]})
    out["anchor"] = out["anchor_item"].map(text)
    out["positive"] = out["positive_item"].map(text)
    return out


def user_pairs(train: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame | None = None, history_n: int = 3,
               context: str = "description+history", new_only: bool = True) -> pd.DataFrame:
    """(user context → a later item) pairs, from a training log.

    For each event (the target), the context is built only from what came before it in time: the user's
    self-description (``users.description``, if ``context`` includes it) and the texts of their last
    ``history_n`` earlier items, most recent first. ``new_only`` keeps only targets the user had not taken before
    (the discovery task). Events with an empty context are skipped.
    Returns ``user_id, positive_item, positive_time, context_items, context_times, anchor, positive``.
    """
    history_n = checks.integer("history_n", history_n, min=0)
    checks.choice("context", context, CONTEXTS)
    use_desc, use_hist = "description" in context, "history" in context
    if use_hist and history_n == 0:
        raise ValueError(f"history_n must be >= 1 when context={context!r} uses the history; "
                         "use context='description' for descriptions alone")
    if use_desc and (users is None or C.DESCRIPTION not in users.columns):
        raise ValueError(f"context={context!r} needs users with a {C.DESCRIPTION!r} column; pass users=ds.users "
                         "or context='history'")
    df = _ordered(train, items)
    text = dict(zip(items[C.ITEM], items[C.TEXT]))
    desc = {} if not use_desc else dict(zip(users[C.USER], users[C.DESCRIPTION].fillna("").astype(str).str.strip()))
    rows = []
    for user, g in df.groupby(C.USER, sort=False):
        its, ts = g[C.ITEM].tolist(), g[C.TIMESTAMP].tolist()
        d = desc.get(user, "")
        seen: set = set()
        for t in range(len(its)):
            target = its[t]
            if not (new_only and target in seen):
                lo = max(0, t - history_n) if use_hist else t
                ctx_items, ctx_times = its[lo:t][::-1], ts[lo:t][::-1]
                parts = ([d] if d else []) + [text[i] for i in ctx_items]
                if parts:
                    rows.append((user, target, ts[t], tuple(ctx_items), tuple(ctx_times), " | ".join(parts),
                                 text[target]))
            seen.add(target)
    return pd.DataFrame(rows, columns=[C.USER, "positive_item", "positive_time", "context_items",
                                       "context_times", "anchor", "positive"])


def training_pairs(train: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame | None = None,
                   config: FinetuneConfig = FinetuneConfig()) -> pd.DataFrame:
    """The pairs :func:`finetune` trains on: ``config.pair_types`` built, mixed, subsampled to ``config.max_pairs``.

    With ``config.hard_negatives`` a ``negative`` column is added later by :func:`finetune` (it needs the model).
    """
    checks.choice("pair_types", config.pair_types, PAIR_TYPES)
    parts = []
    if "item" in config.pair_types:
        parts.append(item_pairs(train, items, config.window, config.max_gap_days, config.min_cooccurrence).assign(kind="item"))
    if "user" in config.pair_types:
        up = user_pairs(train, items, users, config.history_n, config.context).assign(kind="user")
        parts.append(up)
    pairs = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if config.max_pairs is not None and len(pairs) > config.max_pairs:
        rng = np.random.default_rng(config.seed)
        if len(parts) > 1:  # keep the mix even: half of each kind where each has enough
            take = []
            per = config.max_pairs // len(parts)
            for k, kind in enumerate(pd.unique(pairs["kind"])):
                idx = np.flatnonzero(pairs["kind"].to_numpy() == kind)
                n = min(len(idx), per if k < len(parts) - 1 else config.max_pairs - sum(map(len, take)))
                take.append(rng.choice(idx, n, replace=False))
            keep = np.sort(np.concatenate(take))
        else:
            keep = np.sort(rng.choice(len(pairs), config.max_pairs, replace=False))
        pairs = pairs.iloc[keep].reset_index(drop=True)
    return pairs


def validation_split(train: pd.DataFrame, val_frac: float = 0.2):
    """Carve a validation slice from a training log by time: ``split_by_time(train, test_frac=val_frac)``.

    Returns a :class:`~course_lib.data.splits.Split` whose ``train`` is what pairs are built from and whose
    ``test`` is what early stopping is scored on.
    """
    from .data.splits import split_by_time

    checks.number("val_frac", val_frac, above=0, below=1)
    return split_by_time(train, test_frac=val_frac)


# ---------------------------------------------------------------------------------------------------------------
# the validation score: discovery NDCG@10 with history profiles
# ---------------------------------------------------------------------------------------------------------------
def discovery_targets(history: pd.DataFrame, target: pd.DataFrame) -> tuple[list, list[set]]:
    """Users of ``target`` who have history, and for each the items of ``target`` they had not taken in ``history``.

    Users left with nothing new are dropped (the discovery task: recommend what the user has not seen).
    """
    seen = history.groupby(C.USER)[C.ITEM].agg(set)
    wanted = target.groupby(C.USER)[C.ITEM].agg(set)
    users, relevant = [], []
    for u, rel in wanted.items():
        if u in seen.index:
            new = rel - seen[u]
            if new:
                users.append(u)
                relevant.append(new)
    return users, relevant


def discovery_ndcg(item_vecs: np.ndarray, items: pd.DataFrame, history: pd.DataFrame, target: pd.DataFrame,
                   k: int = 10, half_life_days: float | None = 30.0) -> float:
    """NDCG@k of content recommendations on the discovery task (the validation score of :func:`finetune`),
    computed by the kit's own :func:`~course_lib.evaluate.evaluate`.

    Profile = recency-weighted mean of the user's ``history`` item vectors; every item the user took in ``history``
    is hidden; relevant = their ``target`` items not in ``history``; users without history are left out.
    """
    from .baselines import Content
    from .catalogue import Catalogue
    from .evaluate import evaluate

    users, _ = discovery_targets(history, target)
    if not users:
        raise ValueError("the validation slice has no user with history and a new item; "
                         "use a larger val_frac, or pass eval_fn")
    cat = Catalogue.from_items(items, item_vecs)
    ev = evaluate({"content": Content(cat, half_life_days=half_life_days, fallback=None)}, history,
                  target[target[C.USER].isin(set(users))], cat, k, with_auc=False)
    return float(ev.per_user["ndcg"].mean())


# ---------------------------------------------------------------------------------------------------------------
# the model: loading, freezing, LoRA, pooling, loss
# ---------------------------------------------------------------------------------------------------------------
def _check_encoder_config(path: str, asked: str):
    """Refuse decoder-only and encoder-decoder models before any weights are read."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    try:
        cfg = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as e:
        from .encode import ModelNotFoundError

        raise ModelNotFoundError(f"model {asked!r} could not be loaded ({str(e).splitlines()[0][:200]}); pass a "
                                 "local folder with config.json, or the bundled 'all-MiniLM-L6-v2'") from None
    kind = getattr(cfg, "model_type", "?")
    if getattr(cfg, "is_encoder_decoder", False) or getattr(cfg, "is_decoder", False) \
            or kind not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise ValueError(f"model {asked!r} is a {kind!r} model, not a bidirectional encoder (BERT-like); contrastive "
                         "fine-tuning with mean pooling needs one: pass model='all-MiniLM-L6-v2' or another "
                         "sentence encoder (BERT, MiniLM, MPNet, DistilBERT, RoBERTa)")
    return cfg


def load_encoder(model: str = DEFAULT_TEXT_MODEL):
    """``(tokenizer, model)`` of an encoder, checked to be one (a GPT-2-style causal LM is refused)."""
    from .encode import _load_hf

    path = resolve_text_model(model)
    _check_encoder_config(path, model)
    return _load_hf(path, model)


def _encoder_layers(model):
    """The stack of transformer layers of common encoder families (BERT/RoBERTa/MiniLM, DistilBERT, others)."""
    for path in ("encoder.layer", "transformer.layer", "encoder.layers", "layers", "layer"):
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if obj is not None and hasattr(obj, "__len__"):
            return obj
    return None


def freeze_bottom(model, n_layers: int) -> int:
    """Freeze the embeddings and the bottom ``n_layers`` transformer layers; return how many parameters stay trainable."""
    if n_layers > 0:
        layers = _encoder_layers(model)
        if layers is None:
            raise ValueError(f"freeze_layers={n_layers}: cannot find the layer stack of {type(model).__name__}; "
                             "use freeze_layers=0 or method='lora'")
        if n_layers > len(layers):
            raise ValueError(f"freeze_layers={n_layers} but the model has {len(layers)} layers; "
                             f"pass at most {len(layers)}")
        emb = getattr(model, "embeddings", None)
        for p in (emb.parameters() if emb is not None else []):
            p.requires_grad_(False)
        for layer in list(layers)[:n_layers]:
            for p in layer.parameters():
                p.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def add_lora(model, r: int, alpha: float, dropout: float, n_frozen: int = 0):
    """Wrap ``model`` with LoRA adapters (peft) on every linear layer, or with ``n_frozen`` only on the linear layers
    above the bottom ``n_frozen`` transformer layers (whose outputs can then be computed once and cached, as
    ``freeze_layers`` does); only the adapters train."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:  # pragma: no cover - peft is a dependency
        raise ImportError("method='lora' needs the peft package: pip install peft (make install does)") from None
    import warnings

    import torch

    target = "all-linear"
    if n_frozen:
        layers = _encoder_layers(model)
        if layers is None:
            raise ValueError(f"freeze_layers={n_frozen} with method='lora': cannot find the layer stack of "
                             f"{type(model).__name__}; pass freeze_layers=0 (LoRA on every layer)")
        if n_frozen >= len(layers):
            raise ValueError(f"freeze_layers={n_frozen} with method='lora' leaves no layer to adapt: the model has "
                             f"{len(layers)} layers; pass at most {len(layers) - 1}")
        names = {id(m): n for n, m in model.named_modules()}
        target = [names[id(m)] for layer in list(layers)[n_frozen:] for m in layer.modules()
                  if isinstance(m, torch.nn.Linear)]
    cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target, bias="none")
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing for the user to do
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, cfg)


def trainable_parameters(config: FinetuneConfig) -> int:
    """How many numbers ``config`` trains: the adapter's dim x dim matrix, the unfrozen top layers, or the LoRA
    adapters (the cost table's first column)."""
    _check_config(config)
    _, model = load_encoder(config.model)
    if config.method == "adapter":
        return int(model.config.hidden_size) ** 2
    if config.method == "lora":
        model = add_lora(model, config.lora_r or 8, config.lora_alpha, config.lora_dropout, config.freeze_layers)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    return freeze_bottom(model, config.freeze_layers)


def mean_pool(last_hidden_state, attention_mask):
    """Mask-aware mean of the token vectors, exactly as ``TextEncoder(pooling='mean')`` and sentence-transformers."""
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


def info_nce(anchors, candidates, scale, duplicate_mask=None, symmetric: bool = False):
    """InfoNCE with in-batch negatives (sentence-transformers' ``MultipleNegativesRankingLoss``).

    ``anchors`` (B, d) and ``candidates`` (B + extra, d) are raw embeddings; row i of ``candidates`` is anchor
    i's positive, every other row (other positives, hard negatives) a negative. logits = scale · cos(a_i, c_j);
    loss = mean_i cross-entropy(logits_i, i). ``duplicate_mask`` (B, B + extra) True where c_j is the same text
    as c_i (a false negative): those logits are set to -inf. ``symmetric`` adds the positives → anchors direction.
    """
    import torch
    import torch.nn.functional as F

    a = F.normalize(anchors.float(), p=2, dim=1)
    c = F.normalize(candidates.float(), p=2, dim=1)
    logits = scale * (a @ c.T)
    if duplicate_mask is not None:
        logits = logits.masked_fill(duplicate_mask, float("-inf"))
    labels = torch.arange(len(a), device=a.device)
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        back = logits[:, :len(a)].T
        loss = (loss + F.cross_entropy(back, labels)) / 2
    return loss


def _additive_mask(attention_mask, dtype):
    """(B, L) 0/1 mask -> (B, 1, 1, L) additive mask (0 keep, very negative drop): what BERT layers add to scores."""
    import torch

    return (1.0 - attention_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _run_layers(layers, hidden, mask):
    for layer in layers:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, (tuple, list)) else out
    return hidden


class _Runner:
    """Texts -> mean-pooled embeddings through the model being trained.

    Plain mode: the whole model each call. Split mode (``freeze_layers`` with ``cache_frozen``): the frozen bottom
    (embeddings + N layers) is run once per distinct text, without gradients or dropout, and its hidden states are
    kept (within a memory budget); each step runs only the trainable top layers on them. Split mode is switched on
    only after a self-check shows it reproduces the model's own forward pass on this model class.
    """

    def __init__(self, tokenizer, model, device, max_length, autocast, n_frozen=0, cache=False, budget_mb=1024):
        self.tokenizer, self.model, self.device = tokenizer, model, device
        self.max_length, self.autocast = max_length, autocast
        self.n_frozen, self.store, self.used, self.budget = n_frozen, {}, 0, budget_mb * 2**20
        self.tokens: dict[str, list] = {}
        self.split = False
        if n_frozen > 0 and cache:
            self.layers, self.emb = _encoder_layers(model), getattr(model, "embeddings", None)
            if self.layers is not None and self.emb is not None:
                self.split = self._agrees_with_model()

    # ---- pieces -----------------------------------------------------------------------------------------
    def _tokenize(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.tokens]
        if missing:
            enc = self.tokenizer(missing, truncation=True, max_length=self.max_length, padding=False)
            keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
            for j, t in enumerate(missing):
                self.tokens[t] = {k: enc[k][j] for k in keys}
        return self.tokenizer.pad([self.tokens[t] for t in texts], return_tensors="pt").to(self.device)

    def _bottom(self, batch):
        import torch

        kw = {"input_ids": batch["input_ids"]}
        if "token_type_ids" in batch:
            kw["token_type_ids"] = batch["token_type_ids"]
        h = self.emb(**kw)
        return _run_layers(list(self.layers)[:self.n_frozen], h, _additive_mask(batch["attention_mask"], h.dtype))

    def _top(self, h, attention_mask):
        return _run_layers(list(self.layers)[self.n_frozen:], h, _additive_mask(attention_mask, h.dtype))

    def _agrees_with_model(self) -> bool:
        import torch

        was = self.model.training
        self.model.eval()
        batch = self._tokenize(["a short text", "a somewhat longer text to check padding and masks work here"])
        with torch.no_grad():
            ref = self.model(**batch).last_hidden_state
            mine = self._top(self._bottom(batch), batch["attention_mask"])
        self.model.train(was)
        self.tokens.clear()
        m = batch["attention_mask"].bool()
        return bool(torch.allclose(ref[m], mine[m], atol=1e-4, rtol=1e-4))

    def _cached_bottom(self, texts):
        """Hidden states after the frozen part, padded: (B, L, d) and the (B, L) mask."""
        import torch
        from torch.nn.utils.rnn import pad_sequence

        missing = [t for t in dict.fromkeys(texts) if t not in self.store]
        fresh = {}
        if missing:
            batch = self._tokenize(missing)
            with torch.no_grad(), self.autocast():
                h = self._bottom(batch).float()
            lengths = batch["attention_mask"].sum(1).tolist()
            for j, t in enumerate(missing):
                fresh[t] = h[j, :lengths[j]]
                if self.used + fresh[t].numel() * 4 <= self.budget:
                    self.store[t] = fresh[t]
                    self.used += fresh[t].numel() * 4
        seq = [self.store[t] if t in self.store else fresh[t] for t in texts]
        h = pad_sequence(seq, batch_first=True)
        mask = pad_sequence([torch.ones(len(x), dtype=torch.long, device=self.device) for x in seq], batch_first=True)
        return h, mask

    # ---- the two uses -----------------------------------------------------------------------------------
    def embed(self, texts):
        """Mean-pooled embeddings (B, d), float32, with gradients (the training step)."""
        if self.split:
            self.emb.eval()
            for layer in list(self.layers)[:self.n_frozen]:
                layer.eval()
            h, mask = self._cached_bottom(texts)
            with self.autocast():
                out = self._top(h, mask)
            return mean_pool(out.float(), mask)
        batch = self._tokenize(texts)
        with self.autocast():
            out = self.model(**batch).last_hidden_state
        return mean_pool(out.float(), batch["attention_mask"])

    def encode(self, texts, batch_size: int = 128, show_progress=None) -> np.ndarray:
        """``TextEncoder.encode``'s contract: (n, dim) float32 unit rows, in input order; model in eval mode."""
        import torch
        import torch.nn.functional as F

        texts = list(texts)
        was = self.model.training
        self.model.eval()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), int(self.model.config.hidden_size)), dtype=np.float32)
        with torch.no_grad():
            for s in range(0, len(texts), batch_size):
                idx = order[s:s + batch_size]
                out[idx] = F.normalize(self.embed([texts[i] for i in idx]), dim=1).cpu().numpy()
        self.model.train(was)
        return out


# ---------------------------------------------------------------------------------------------------------------
# checks and the public entry point (the loop itself is course_lib.trainer)
# ---------------------------------------------------------------------------------------------------------------
def _check_config(config: FinetuneConfig) -> None:
    if not isinstance(config, FinetuneConfig):
        raise TypeError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    config.__post_init__()  # a config changed behind the dataclass's back (object.__setattr__) is checked again


def _check_pairs(pairs: pd.DataFrame, items: pd.DataFrame | None) -> pd.DataFrame:
    if not isinstance(pairs, pd.DataFrame):
        raise TypeError(f"pairs must be a DataFrame with columns {PAIR_COLUMNS}, got {type(pairs).__name__}")
    missing = [c for c in PAIR_COLUMNS if c not in pairs.columns]
    if missing:
        raise ValueError(f"pairs is missing column(s) {missing}; build it with training_pairs(), item_pairs() "
                         "or user_pairs()")
    if len(pairs) < 2:
        raise ValueError(f"pairs has {len(pairs)} training pair(s); contrastive training needs at least two. "
                         "Check that train has users with two or more interactions (or relax window, max_gap_days, "
                         "min_cooccurrence)")
    if items is not None:
        known = set(items[C.ITEM])
        for col in ("anchor_item", "positive_item", "negative_item"):
            if col in pairs.columns:
                bad = ~pairs[col].isin(known)
                if bad.any():
                    raise ValueError(f"pairs[{col!r}] holds item(s) missing from items, e.g. "
                                     f"{list(pd.unique(pairs.loc[bad, col])[:5])}; build pairs from the same items")
    for col in PAIR_COLUMNS + (("negative",) if "negative" in pairs.columns else ()):
        bad = ~pairs[col].map(lambda t: isinstance(t, str))
        if bad.any():
            raise ValueError(f"pairs[{col!r}] row {int(np.flatnonzero(bad.to_numpy())[0])} is not a string; "
                             "every pair needs two texts")
    return pairs.reset_index(drop=True)


def _prepare_out(out, overwrite: bool) -> Path | None:
    if out is None:
        return None
    out = Path(out)
    if out.exists() and not checks.boolean("overwrite", overwrite):
        raise FileExistsError(f"out={str(out)!r} already exists; pass overwrite=True to replace it, "
                              "or another folder")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"out={str(out)!r} is a file, not a folder; pass a folder path")
    return out


def _add_hard_negatives(pairs, items, train, live, config, rng) -> pd.DataFrame:
    """For each item-anchored pair: an item ranked ``hard_negative_ranks`` among the anchor's frozen-model neighbours
    that the pair's user never took in ``train``. User pairs get a random item the user never took."""
    ids = items[C.ITEM].to_numpy()
    text = items[C.TEXT].to_numpy()
    pos = {i: k for k, i in enumerate(ids)}
    vecs = live.encode(list(text))
    lo, hi = config.hard_negative_ranks
    hi = min(hi, len(ids) - 1)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -np.inf)
    neigh = np.argsort(-sims, axis=1)[:, lo:hi]
    taken = train.groupby(C.USER)[C.ITEM].agg(set)
    neg_items = []
    for user, anchor_item in zip(pairs[C.USER], pairs.get("anchor_item", pd.Series([None] * len(pairs)))):
        seen = taken.get(user, set())
        pool = neigh[pos[anchor_item]] if isinstance(anchor_item, str) and anchor_item in pos else rng.permutation(len(ids))[:hi]
        pool = [j for j in pool if ids[j] not in seen]
        neg_items.append(ids[pool[rng.integers(len(pool))]] if pool else ids[rng.integers(len(ids))])
    out = pairs.copy()
    out["negative_item"] = neg_items
    out["negative"] = [text[pos[i]] for i in neg_items]
    return out


def finetune(train: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame | None = None,
             config: FinetuneConfig = FinetuneConfig(), *, out=None, overwrite: bool = False,
             pairs: pd.DataFrame | None = None, eval_fn: Callable | None = None,
             show_progress: bool | None = None) -> FinetuneResult:
    """Fine-tune ``config.model`` contrastively on pairs from the ``train`` log; save it to ``out``.

    - ``train``: the training split (``user_id, item_id, timestamp``); never pass test events.
    - ``items``: with ``item_id`` and ``text``; ``users``: with ``description`` (for user-context pairs).
    - ``config.val_frac > 0``: the latest ``val_frac`` of ``train`` is held out; pairs come from the rest, and
      the validation score is :func:`discovery_ndcg` on the held-out slice (or ``eval_fn``), computed before
      training and ``evals_per_epoch`` times per epoch. Training stops after ``patience`` evaluations without
      improvement and the best weights are kept (step 0 = the starting model, if nothing beat it).
    - ``eval_fn(encoder) -> float`` (higher is better) replaces the built-in score; ``encoder.encode(texts)``
      returns unit rows like ``TextEncoder.encode``. It runs even with ``val_frac=0``.
    - ``pairs``: train on these instead (columns ``anchor, positive`` [, ``negative``]).
    - ``out``: a new folder (``overwrite=True`` to replace one), written atomically: the model appears there
      complete or not at all. ``out=None`` keeps the model in memory only (``result.model``).
    """
    t_start = time.perf_counter()
    _check_config(config)
    out = _prepare_out(out, overwrite)
    _check_encoder_config(resolve_text_model(config.model), config.model)  # before any work: a GPT-2 is refused now
    device = get_device(config.device)
    set_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    # ---- data: a validation slice by time, pairs from what precedes it -------------------------------------
    fit_log, val_log = train, None
    if config.val_frac > 0 and eval_fn is None:
        sp = validation_split(train, config.val_frac)
        fit_log, val_log = sp.train, sp.test
    if pairs is None:
        pairs = training_pairs(fit_log, items, users, config)
    pairs = _check_pairs(pairs, items)
    if config.method == "adapter":
        return _finetune_adapter(pairs, items, fit_log, val_log, config, device, out, overwrite, eval_fn, t_start)

    from .trainer import train as train_encoder

    return train_encoder(pairs, items, fit_log, val_log, config, device, rng, out=out, overwrite=overwrite,
                         eval_fn=eval_fn, show_progress=show_progress, t_start=t_start)


class _AdapterEncoder:
    """The frozen encoder followed by the adapter W, in memory: ``encode(texts)`` gives unit rows, as
    ``TextEncoder(folder)`` does for the saved folder."""

    def __init__(self, base, W):
        self.base, self.W = base, np.asarray(W, dtype=np.float32)

    def encode(self, texts) -> np.ndarray:
        from .vectors import unit_rows

        return unit_rows(self.base.encode(texts) @ self.W).astype(np.float32)


def _finetune_adapter(pairs, items, fit_log, val_log, config, device, out, overwrite, eval_fn, t_start):
    """method='adapter': encode the catalogue once with the frozen model (the embedding cache), build each pair's
    anchor as the mean of its context items' vectors, and train W with :func:`course_lib.adapter.train_adapter`."""
    from .adapter import mean_anchors, train_adapter
    from .encode import TextEncoder

    if "context_items" not in pairs.columns or "positive_item" not in pairs.columns:
        raise ValueError("method='adapter' needs user pairs with 'context_items' and 'positive_item' columns "
                         "(user_pairs builds them); pairs of free texts need method='top-layers' or 'lora'")
    base = TextEncoder(config.model, device=config.device, show_progress=False)
    item_vecs = base.encode(items[C.TEXT].tolist())
    row_of = {item: r for r, item in enumerate(items[C.ITEM])}
    anchors = mean_anchors(item_vecs, list(pairs["context_items"]), row_of)
    positives = pairs["positive_item"].map(row_of).to_numpy()

    score = None
    if eval_fn is not None:
        def score(W):
            return float(eval_fn(_AdapterEncoder(base, W)))
    elif val_log is not None:
        from .vectors import unit_rows

        def score(W):
            return discovery_ndcg(unit_rows(item_vecs @ W), items, fit_log, val_log, 10, config.half_life_days)

    from .costs import measure

    with measure(device) as cost:
        fit = train_adapter(anchors, positives, item_vecs, epochs=config.epochs, batch_size=config.batch_size,
                            lr=config.lr, scale=config.scale, weight_decay=config.weight_decay,
                            patience=config.patience, seed=config.seed, eval_fn=score, device=str(device))
    steps_per_epoch = fit["steps_per_epoch"]
    hist = pd.DataFrame([{**h, "lr": config.lr, "scale": config.scale} for h in fit["history"]],
                        columns=["step", "epoch", "loss", "lr", "scale"])
    ev = pd.DataFrame([{"step": int(round(e["epoch"] * steps_per_epoch)), "epoch": float(e["epoch"]),
                        "val": e["val"]} for e in fit["evals"]], columns=["step", "epoch", "val"])
    best_step = int(round(fit["best_epoch"] * steps_per_epoch))
    result = FinetuneResult(path=None, history=hist, evals=ev, best_step=best_step, best_val=fit["best_val"],
                            n_pairs=len(pairs), seconds=0.0, train_seconds=fit["train_seconds"], config=config,
                            model=None, adapter=fit["W"], peak_memory_mb=cost.peak_mb,
                            _runner=_AdapterEncoder(base, fit["W"]))
    if out is not None:
        tokenizer, model = load_encoder(config.model)
        result.path = save_model(model, tokenizer, out, overwrite=overwrite, adapter=fit["W"],
                                 meta={"finetune_config": _jsonable(asdict(config)), "n_pairs": len(pairs),
                                       "best_step": best_step, "best_val": fit["best_val"], "steps": fit["steps"],
                                       "train_seconds": fit["train_seconds"], "peak_memory_mb": cost.peak_mb,
                                       "seconds": time.perf_counter() - t_start,
                                       "history": hist.to_dict("list"), "evals": ev.to_dict("list")})
    result.seconds = time.perf_counter() - t_start
    return result


def finetune_cached(train: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame | None = None,
                    config: FinetuneConfig | None = None, folder=None) -> FinetuneResult:
    """:func:`finetune`, trained once and then reused: the model folder lives in the cache
    (``<cache_dir>/finetuned/<key>``, or ``folder``), keyed by the settings, the training log and the item texts.

    A second call with the same inputs loads the curves from the folder's ``finetune.json`` in milliseconds
    (``result.model`` is None; ``result.encode`` loads the folder). Any change to the log, the items or a setting
    trains a new model. Processes that ask at once wait on a ``filelock`` lock, so the model is trained once.
    """
    import hashlib

    from filelock import FileLock

    from .runtime import cache_dir

    config = FinetuneConfig() if config is None else config
    if not isinstance(config, FinetuneConfig):
        raise TypeError(f"config must be a FinetuneConfig, got {type(config).__name__}")
    _check_config(config)
    h = hashlib.sha256(json.dumps(_jsonable(asdict(config)), sort_keys=True, default=str).encode())
    h.update(str(get_device(config.device).type).encode())
    log = train[[C.USER, C.ITEM, C.TIMESTAMP]].astype(str).sort_values([C.USER, C.TIMESTAMP, C.ITEM])
    h.update(pd.util.hash_pandas_object(log, index=False).values.tobytes())
    h.update(pd.util.hash_pandas_object(items[[C.ITEM, C.TEXT]].astype(str), index=False).values.tobytes())
    if users is not None and "description" in users.columns and "description" in config.context:
        h.update(pd.util.hash_pandas_object(users[[C.USER, "description"]].astype(str), index=False).values.tobytes())
    out = Path(folder) if folder is not None else cache_dir() / "finetuned" / h.hexdigest()[:20]
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out.parent / f".{out.name}.lock")):
        meta_file = out / "finetune.json"
        meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
        if "history" in meta and "evals" in meta:
            return FinetuneResult(path=out, history=pd.DataFrame(meta["history"]), evals=pd.DataFrame(meta["evals"]),
                                  best_step=int(meta["best_step"]), best_val=meta["best_val"],
                                  n_pairs=int(meta["n_pairs"]), seconds=float(meta.get("seconds", 0.0)),
                                  train_seconds=float(meta.get("train_seconds", 0.0)), config=config,
                                  peak_memory_mb=meta.get("peak_memory_mb"))
        return finetune(train, items, users, config, out=out, overwrite=True)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _jsonable(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def save_model(model, tokenizer, out, overwrite: bool = False, meta: dict | None = None,
               adapter: np.ndarray | None = None) -> Path:
    """Save ``model`` + ``tokenizer`` as a folder ``TextEncoder`` loads (safetensors, tokenizer files, config.json).

    ``adapter``: a matrix W applied after mean pooling, saved as sentence-transformers' ``Dense`` module
    (:func:`course_lib.adapter.write_dense`); ``TextEncoder`` and ``SentenceTransformer`` both apply it.

    Atomic: everything is written to a temporary folder beside ``out``, then renamed into place; an interrupted
    run leaves no half-written model. ``meta`` is written to ``finetune.json`` (settings and curves summary).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"out={str(out)!r} already exists; pass overwrite=True to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; a shared cache or a colleague needs the usual mode
    old = None
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a one-shard "Writing model shards" bar is noise in a notebook
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if adapter is not None:
            from .adapter import write_dense

            write_dense(tmp, adapter)
        if meta is not None:
            (tmp / "finetune.json").write_text(json.dumps(meta, indent=2, default=str))
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists() and not out.exists():
            os.replace(old, out)
        raise
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


__all__ = ["ADAPTER", "FAST", "METHODS", "FinetuneConfig", "FinetuneResult", "discovery_ndcg", "discovery_targets", "finetune",
           "finetune_cached", "info_nce", "trainable_parameters", "cost_configs", "overfit_configs", "preset", "item_pairs", "load_encoder", "mean_pool", "save_model", "training_pairs",
           "user_pairs", "validation_split"]
