"""Hidden cases and checks of 00_welcome, 01_encoding, 02_fusion and 03_ranking."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .. import constants as C
from ..exercises import Case, Result, as_array, check_code, close, equal
from ._common import _log, _number, _rng, _scaled, _unit


# ---- 00_welcome ----------------------------------------------------------------------------------------
def _events(counts: dict) -> pd.DataFrame:
    return _log([(u, f"i{j % 7}") for u, n in counts.items() for j in range(n)])


def cases_torso_users() -> list[Case]:
    def ref(log, lo, hi):
        n = log.groupby(C.USER).size()
        return int(((n >= lo) & (n < hi)).sum())

    out = []
    for label, counts, lo, hi in [
        ("users with 4, 5, 19 and 20 events", {"a": 4, "b": 5, "c": 19, "d": 20}, 5, 20),
        ("one user per count from 1 to 25", {f"u{n}": n for n in range(1, 26)}, 5, 20),
        ("every user at the bounds", {"a": 2, "b": 3, "c": 3}, 2, 3),
        ("an empty log", {}, 5, 20),
    ]:
        log = _events(counts)
        out.append(Case(label, (log, lo, hi), ref(log, lo, hi) if len(log) else 0))
    return out


def check_torso_users(fn, name: str = "torso_users") -> Result:
    """``fn(interactions, lo, hi)``: how many users have at least ``lo`` and fewer than ``hi`` interactions."""
    return check_code(name, fn, cases_torso_users(), _number(0),
                      hint="count events per user first (groupby), then count the users in [lo, hi): lo is in, hi is out")


def cases_top_share() -> list[Case]:
    rng = _rng(0)
    out = []
    for label, n_items, frac in [("50 items, top 1% (less than one item)", 50, 0.01),
                                 ("300 items, top 1%", 300, 0.01), ("40 items, top 10%", 40, 0.1)]:
        counts = rng.integers(1, 30, size=n_items)
        log = _log([("u", f"i{j:03d}") for j in range(n_items) for _ in range(counts[j])]).sample(frac=1, random_state=1)
        top = max(1, int(n_items * frac))
        out.append(Case(label, (log.reset_index(drop=True), frac), float(np.sort(counts)[::-1][:top].sum() / counts.sum())))
    return out


def check_top_share(fn, name: str = "top_share") -> Result:
    """``fn(interactions, frac)``: share of all interactions that go to the top ``frac`` of items (at least one)."""
    return check_code(name, fn, cases_top_share(), _number(1e-9),
                      hint="count events per item, sort from most to least, keep max(1, int(n_items * frac)) items")


# ---- 01_encoding ---------------------------------------------------------------------------------------
def cases_mean_pool() -> list[Case]:
    import torch

    from ..encode import mean_pool

    g = torch.Generator().manual_seed(1)
    out = []
    for label, lengths, T, d in [("batch of 2, no padding", [4, 4], 4, 3),
                                 ("batch of 3, rows padded to 6 tokens", [6, 2, 4], 6, 5),
                                 ("batch of 1, one real token then padding", [1], 5, 4)]:
        hidden = torch.randn(len(lengths), T, d, generator=g)
        mask = torch.zeros(len(lengths), T, dtype=torch.long)
        for r, n in enumerate(lengths):
            mask[r, :n] = 1
            hidden[r, n:] += 50.0  # padding positions hold large values: they must not count
        out.append(Case(label, (hidden, mask), mean_pool(hidden, mask)))
    return out


def check_mean_pool(fn, name: str = "mean_pool") -> Result:
    """``fn(last_hidden_state, attention_mask)`` → ``(B, d)``: the mean of each row's real tokens."""
    return check_code(name, fn, cases_mean_pool(), close(1e-4),
                      hint="padding tokens have attention_mask 0: multiply by the mask, then divide by the number of "
                           "real tokens in each row (not by the padded length)")


def cases_neighbour_precision() -> list[Case]:
    from ..diagnostics import neighbour_precision

    rng = _rng(2)
    out = []
    for label, n, d, k, n_labels in [("12 items, 3 labels, k=2", 12, 4, 2, 3), ("20 items, 4 labels, k=5", 20, 6, 5, 4),
                                     ("8 items, 2 labels, k=1", 8, 3, 1, 2)]:
        vecs = _scaled(rng, n, d)
        labels = np.array([f"L{j}" for j in rng.integers(0, n_labels, size=n)])
        out.append(Case(label, (vecs, labels, k), neighbour_precision(vecs, labels, k)))
    return out


def check_neighbour_precision(fn, name: str = "neighbour_precision") -> Result:
    """``fn(vectors, labels, k)``: mean share of each item's ``k`` nearest neighbours (cosine) with its label."""
    return check_code(name, fn, cases_neighbour_precision(), _number(1e-6),
                      hint="cosine means unit-length rows first; an item is not its own neighbour")

# ---- 02_fusion -----------------------------------------------------------------------------------------
def cases_fuse() -> list[Case]:
    rng = _rng(3)
    out = []
    for label, alpha in [("alpha 0.3", 0.3), ("alpha 0.5", 0.5), ("alpha 1 (text only)", 1.0), ("alpha 0 (picture only)", 0.0)]:
        t, i = _scaled(rng, 5, 4), _scaled(rng, 5, 7)
        ut, ui = _unit(t), _unit(i)
        out.append(Case(label, (t, i, alpha), alpha * ut @ ut.T + (1 - alpha) * ui @ ui.T))
    return out


def _gram_matches(got, expected):
    f = as_array(got).astype(float)
    if f.ndim != 2 or len(f) != len(expected):
        return f"expected one fused row per item ({len(expected)}), got shape {f.shape}"
    gram = f @ f.T
    if not np.allclose(gram, expected, atol=1e-5):
        i, j = np.unravel_index(np.abs(gram - expected).argmax(), gram.shape)
        return f"fused row {i} · row {j} = {gram[i, j]:.4f}, the weighted mean of cosines is {expected[i, j]:.4f}"
    return None


def check_fuse(fn, name: str = "fuse") -> Result:
    """``fn(text_vecs, image_vecs, alpha)``: fused rows whose dot products are alpha·cos_text + (1−alpha)·cos_image."""
    res = check_code(name, fn, cases_fuse(), _gram_matches,
                     hint="normalise each block's rows, scale by the square root of its weight, then concatenate")
    return res


def cases_weighted_cosine() -> list[Case]:
    from ..fuse import fuse_text_image

    rng = _rng(4)
    out = []
    for label, alpha in [("alpha 0.3", 0.3), ("alpha 0.8", 0.8), ("alpha 0.5", 0.5)]:
        t, i = _scaled(rng, 2, 6), _scaled(rng, 2, 9)
        f = fuse_text_image(t, i, alpha)
        out.append(Case(label, (t[0], t[1], i[0], i[1], alpha), float(f[0] @ f[1])))
    return out


def check_weighted_cosine(fn, name: str = "weighted_cosine") -> Result:
    """``fn(text_a, text_b, image_a, image_b, alpha)``: the fused cosine of two items, from the blocks' cosines."""
    return check_code(name, fn, cases_weighted_cosine(), _number(1e-5),
                      hint="a cosine divides the dot product by both lengths; alpha weighs the text")

# ---- 03_ranking ----------------------------------------------------------------------------------------
def cases_top_k_masked() -> list[Case]:
    from ..rank import top_k_scores

    rng = _rng(5)
    s1 = rng.normal(size=(3, 8))
    s2 = np.round(rng.normal(size=(2, 6)), 1)
    s2[0, [1, 3, 4]] = 0.9  # a three-way tie at the top
    s3 = -np.abs(rng.normal(size=(2, 5)))  # every score negative
    s4 = np.ones((1, 4))
    out = []
    for label, scores, k, seen in [("3 users, seen items at the top", s1, 3, [[int(np.argmax(s1[0]))], [], [0, 1, 2]]),
                                   ("ties in the scores", s2, 4, [[3], [0]]),
                                   ("all scores negative", s3, 2, [[0, 1], [4]]),
                                   ("fewer unseen items than k", s4, 3, [[0, 2]])]:
        out.append(Case(label, (scores, k, seen), top_k_scores(scores, k, exclude=seen)[1]))
    return out


def check_top_k_masked(fn, name: str = "top_k_masked") -> Result:
    """``fn(scores, k, seen)`` → ``(n_users, k)`` item indices: best first, seen hidden, ties by lower index, −1 pad."""
    return check_code(name, fn, cases_top_k_masked(), equal,
                      hint="hide seen items so that no score can beat them (not by setting them to 0); sort with a "
                           "stable order so equal scores keep the lower index first; pad with -1")


def cases_ids_above() -> list[Case]:
    rng = _rng(6)
    ids = [f"item{j:03d}" for j in rng.permutation(12)]
    sims = np.round(rng.uniform(0.2, 0.9, size=12), 2)
    sims[[2, 7]] = 0.5  # exactly at the threshold
    out = []
    for label, t in [("threshold 0.5, two items exactly at it", 0.5), ("threshold 0.95: nothing passes", 0.95),
                     ("threshold 0.0: everything passes", 0.0)]:
        out.append(Case(label, (ids, sims, t), [i for i, s in zip(ids, sims) if s >= t]))
    return out


def check_ids_above(fn, name: str = "ids_above") -> Result:
    """``fn(item_ids, sims, threshold)``: the ids (not the vectors, not the positions) with sim ≥ threshold."""
    return check_code(name, fn, cases_ids_above(), equal,
                      hint="zip the ids with the similarities, keep the id, and mind whether the threshold itself passes")
