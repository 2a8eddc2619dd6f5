"""The linear adapter: the fastest fine-tuning (微调), a matrix W learnt on top of a frozen text encoder.

What it is: every item is encoded once by the frozen model (cached); a user's anchor is the mean of their recent
items' vectors. The adapter learns one square matrix W (identity at the start) so that ``normalize(v @ W)`` ranks
each anchor's next new item first among **the whole catalogue** (a softmax over every item, not a few negatives).
It trains in seconds on a laptop CPU because no transformer runs during training. It is saved the way
sentence-transformers saves a ``Dense`` module after pooling (``2_Dense/``), so ``TextEncoder(folder)`` and
``SentenceTransformer(folder)`` both apply it.

What it is not: a change of the transformer's weights (texts the frozen model confuses stay confused; see the
top-layer and LoRA methods in :mod:`course_lib.finetune`), nor a recommender (profiles, ranking and metrics stay in
their modules).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import checks

DENSE_DIR = "2_Dense"  # sentence-transformers' folder name for a Dense module after Transformer and Pooling
IDENTITY = "torch.nn.modules.linear.Identity"


def mean_anchors(item_vecs: np.ndarray, contexts: list, row_of: dict) -> np.ndarray:
    """One anchor per pair: the mean of the *distinct* context items' vectors (a profile, as the recommender
    builds it from a history), as ``(n_pairs, dim)`` float32."""
    out = np.zeros((len(contexts), item_vecs.shape[1]), dtype=np.float32)
    for r, ctx in enumerate(contexts):
        rows = sorted({row_of[i] for i in ctx})
        out[r] = item_vecs[rows].mean(0)
    return out


def adapter_loss(anchors, item_vecs, W, positives, scale: float):
    """Full-catalogue softmax loss of an adapter ``W`` (torch tensors): for each anchor, the cross-entropy of its
    positive item's row among every item, on cosines of the adapted vectors times ``scale``."""
    import torch.nn.functional as F

    a = F.normalize(anchors @ W, dim=1)
    v = F.normalize(item_vecs @ W, dim=1)
    return F.cross_entropy(scale * a @ v.T, positives)


def train_adapter(anchors: np.ndarray, positives: np.ndarray, item_vecs: np.ndarray, *, epochs: int = 6,
                  batch_size: int = 64, lr: float = 1e-3, scale: float = 20.0, weight_decay: float = 0.0,
                  patience: int = 2, seed: int = 42, eval_fn: Callable[[np.ndarray], float] | None = None,
                  device: str = "cpu") -> dict:
    """Learn ``W`` (dim x dim, identity at the start) with Adam on the full-catalogue softmax.

    - ``anchors``: (n, dim) anchor vectors; ``positives``: (n,) row of each anchor's positive in ``item_vecs``.
    - ``batch_size``: pairs per step; with fewer pairs than that, each epoch is one step over all of them.
    - ``eval_fn(W) -> float`` (higher is better) is called before training and after each epoch; the best
      ``W`` is kept and training stops after ``patience`` epochs without improvement.
    - ``weight_decay`` pulls ``W`` toward the identity (the frozen model), not toward zero (decoupled, as in AdamW).
    Returns ``{"W", "history", "evals", "best_epoch", "best_val", "train_seconds", "steps", "steps_per_epoch"}``.
    """
    import torch

    anchors = np.asarray(anchors, dtype=np.float32)
    item_vecs = np.asarray(item_vecs, dtype=np.float32)
    positives = np.asarray(positives)
    if anchors.ndim != 2 or item_vecs.ndim != 2 or anchors.shape[1] != item_vecs.shape[1]:
        raise ValueError(f"anchors {anchors.shape} and item_vecs {item_vecs.shape} must be 2-D with the same "
                         "number of columns (one vector space)")
    if positives.shape != (len(anchors),) or not np.issubdtype(positives.dtype, np.integer):
        raise ValueError(f"positives must hold one integer row of item_vecs per anchor, shape ({len(anchors)},); "
                         f"got shape {positives.shape}, dtype {positives.dtype}")
    if len(positives) and (positives.min() < 0 or positives.max() >= len(item_vecs)):
        raise ValueError(f"positives must be rows of item_vecs (0..{len(item_vecs) - 1}), got "
                         f"{int(positives.min())}..{int(positives.max())}")
    checks.integer("epochs", epochs, min=1)
    batch_size = checks.integer("batch_size", batch_size, min=1)
    checks.number("lr", lr, above=0, fix="e.g. 1e-3")
    checks.number("scale", scale, above=0, fix="sentence-transformers uses 20")
    checks.number("weight_decay", weight_decay, min=0)
    checks.integer("patience", patience, min=1)
    if len(anchors) == 0:
        raise ValueError("anchors is empty: the adapter needs at least one training pair")
    batch_size = min(batch_size, len(anchors))  # fewer pairs than a batch: one batch of all of them per epoch
    dev = torch.device(device)
    g = torch.Generator().manual_seed(int(seed))
    A = torch.tensor(anchors, device=dev)  # copies: the cache's arrays are read-only, and torch wants to own them
    V = torch.tensor(item_vecs, device=dev)
    P = torch.tensor(positives.astype(np.int64), device=dev)
    dim = A.shape[1]
    eye = torch.eye(dim, device=dev)
    W = torch.nn.Parameter(eye.clone())
    optim = torch.optim.Adam([W], lr=lr)
    history, evals = [], []
    best = {"val": None, "epoch": 0, "W": W.detach().cpu().numpy().copy()}

    def record(epoch) -> bool:
        if eval_fn is None:
            best.update(epoch=epoch, W=W.detach().cpu().numpy().copy())
            return True
        val = float(eval_fn(W.detach().cpu().numpy()))
        evals.append({"epoch": epoch, "val": val})
        if best["val"] is None or val > best["val"]:
            best.update(val=val, epoch=epoch, W=W.detach().cpu().numpy().copy())
        return sum(1 for e in evals if e["epoch"] > best["epoch"]) < patience

    steps_per_epoch = len(A) // batch_size
    seconds, step = 0.0, 0
    keep_going = record(0)
    for epoch in range(1, epochs + 1):
        if not keep_going:
            break
        perm = torch.randperm(len(A), generator=g).to(dev)
        t0 = time.perf_counter()
        for b in range(steps_per_epoch):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            loss = adapter_loss(A[idx], V, W, P[idx], scale)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            if weight_decay:  # decoupled, as AdamW decays, but toward the identity (the frozen model), not zero
                with torch.no_grad():
                    W -= lr * weight_decay * (W - eye)
            step += 1
            history.append({"step": step, "epoch": epoch - 1 + (b + 1) / steps_per_epoch, "loss": float(loss.detach())})
        seconds += time.perf_counter() - t0
        keep_going = record(epoch)
    return {"W": best["W"], "history": history, "evals": evals, "best_epoch": best["epoch"],
            "best_val": best["val"], "train_seconds": seconds, "steps": step, "steps_per_epoch": steps_per_epoch}


def write_dense(folder, W: np.ndarray) -> None:
    """Write ``W`` into ``folder`` as sentence-transformers' ``Dense`` module after pooling, and the
    ``modules.json`` that chains Transformer -> Pooling (mean) -> Dense -> Normalize.

    ``Dense`` computes ``x @ linear.weight.T``, so ``linear.weight`` is ``W.T``."""
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    W = np.asarray(W, dtype=np.float32)
    dim = W.shape[0]
    (folder / DENSE_DIR).mkdir(parents=True, exist_ok=True)
    (folder / "1_Pooling").mkdir(parents=True, exist_ok=True)
    save_file({"linear.weight": torch.from_numpy(np.ascontiguousarray(W.T))},
              str(folder / DENSE_DIR / "model.safetensors"))
    (folder / DENSE_DIR / "config.json").write_text(json.dumps(
        {"in_features": dim, "out_features": int(W.shape[1]), "bias": False, "activation_function": IDENTITY},
        indent=2))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": dim, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
         "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": DENSE_DIR, "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Normalize", "type": "sentence_transformers.models.Normalize"}],
        indent=2))
    (folder / "3_Normalize").mkdir(exist_ok=True)
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": False}))


def read_dense(folder) -> np.ndarray | None:
    """The adapter matrix ``W`` (``v @ W``) of a model folder that chains a ``Dense`` module after pooling,
    or None when the folder has none. A Dense module this kit cannot apply (a bias or an activation other than
    identity) is refused with a clear error rather than silently ignored."""
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return None
    try:
        modules = json.loads(modules_file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{modules_file} is not valid JSON ({e}); re-save the model folder") from None
    dense = [m for m in modules if str(m.get("type", "")).endswith(".Dense")]
    if not dense:
        return None
    if len(dense) > 1:
        raise ValueError(f"{modules_file} chains {len(dense)} Dense modules; TextEncoder applies one linear adapter")
    sub = folder / dense[0].get("path", DENSE_DIR)
    cfg = json.loads((sub / "config.json").read_text())
    if cfg.get("bias") or cfg.get("activation_function", IDENTITY) != IDENTITY:
        raise ValueError(f"the Dense module in {sub} has bias={cfg.get('bias')} and activation "
                         f"{cfg.get('activation_function')!r}; TextEncoder applies only a linear adapter without bias "
                         "and with the identity activation. Load this folder with sentence-transformers instead")
    weights = sub / "model.safetensors"
    if not weights.is_file():
        raise ValueError(f"the Dense module in {sub} has no model.safetensors; re-save the adapter")
    from safetensors.numpy import load_file

    return np.ascontiguousarray(load_file(str(weights))["linear.weight"].T.astype(np.float32))


__all__ = ["adapter_loss", "mean_anchors", "read_dense", "train_adapter", "write_dense"]
