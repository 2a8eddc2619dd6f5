"""The hidden cases and references of the notebooks' code exercises, one ``check_*`` function per exercise.

Each ``cases_*`` builds its cases deterministically (fixed seeds, hand-made edge cases), computes what a right
answer gives with the library (or a reference written here when the library has no such function), and
``check_*`` runs the learner's function on them through :func:`course_lib.exercises.check_code`. Not the
solutions: those are in the teacher's notebooks and ``notebooks/solutions/``; a hint names the idea, never the code.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import constants as C
from .exercises import Case, Result, as_array, check_code, close, equal, report


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _log(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM])


def _scaled(rng, n, d):
    """Rows of very different lengths: a dot product ranks them differently from a cosine."""
    return rng.normal(size=(n, d)) * rng.choice([0.05, 1.0, 20.0], size=(n, 1))


def _number(tol: float = 1e-6):
    def compare(got, expected):
        try:
            g = float(got)
        except (TypeError, ValueError):
            return f"expected a number, got {type(got).__name__}"
        if isinstance(expected, float) and math.isnan(expected):
            return None if math.isnan(g) else "expected nan (undefined)"
        return None if math.isclose(g, expected, rel_tol=tol, abs_tol=tol) else f"off by {g - expected:+.3g}"
    return compare


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

    from .encode import mean_pool

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
    from .diagnostics import neighbour_precision

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
def _unit(x):
    x = np.asarray(x, dtype=float)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


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
    from .fuse import fuse_text_image

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
    from .rank import top_k_scores

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


# ---- 04_tiering ----------------------------------------------------------------------------------------
def cases_decayed_importance() -> list[Case]:
    from .profiles import event_weights

    now = pd.Timestamp("2024-06-30")
    out = []
    for label, ages, hl in [("one event today", [0.0], 30.0), ("one event one half-life ago", [30.0], 30.0),
                            ("five events of various ages", [0.0, 3.5, 45.0, 90.0, 200.0], 60.0),
                            ("no events", [], 90.0)]:
        log = pd.DataFrame({C.TIMESTAMP: now - pd.to_timedelta(np.asarray(ages, dtype=float), unit="D")})
        w = event_weights(log, hl, now=now, use_weights=False) if ages else np.zeros(0)
        out.append(Case(label, (np.asarray(ages, dtype=float), hl), float(w.sum())))
    return out


def check_decayed_importance(fn, name: str = "decayed_importance") -> Result:
    """``fn(ages_days, half_life_days)``: Σ 2^(−age / half-life), the importance of an interest."""
    return check_code(name, fn, cases_decayed_importance(), _number(1e-9),
                      hint="an event one half-life old counts exactly 0.5; importance adds them up")


def _tier_cases(tiered: dict, users) -> list:
    from dataclasses import replace

    from .tiers import UserInterests

    uis = [tiered[u] for u in users]
    one = next(ui for ui in uis if ui.interests)
    single = UserInterests(one.user, [replace(one.interests[0])], one.ages, one.trends_read)
    return [single] + uis


def check_tier_rule(fn, tiered: dict, truth: pd.DataFrame, item_labels, users, cfg, name: str = "my_tier_rule") -> Result:
    """``fn(ui, cfg)`` → one tier per interest: valid on every held-out user, then judged against the default rule.

    Valid means: a list as long as ``ui.interests``, every tier one of ``tiers.TIER_ORDER``, exactly one core. The
    check then re-tiers the held-out users with ``fn`` and prints its recovery next to the default rule's
    (``recovery.tier_score``: core found as core, emerging F1, fading F1), saying which one is better.
    """
    from dataclasses import replace

    from .recovery import recovery, tier_score
    from .tiers import TIER_ORDER, UserInterests, _order, tier_rule

    users = [u for u in users if u in tiered]
    if not users:
        raise ValueError("users must name users of tiered (the held-out users), got none of them")
    cases = [Case(f"user {ui.user!r} with {len(ui.interests)} interest(s)", (ui, cfg), tier_rule(ui, cfg))
             for ui in _tier_cases(tiered, users)]

    def valid(got, expected):
        if not isinstance(got, (list, tuple)):
            return f"expected a list with one tier per interest, got {type(got).__name__}"
        if len(got) != len(expected):
            return f"{len(got)} tiers for {len(expected)} interests"
        bad = [t for t in got if t not in TIER_ORDER]
        if bad:
            return f"{bad[0]!r} is not a tier; tiers are {list(TIER_ORDER)}"
        if list(got).count("core") != 1:
            return f"{list(got).count('core')} core interests; a user has exactly one"
        return None

    res = check_code(name, fn, cases, valid, hint="start from my_tiers in section 2 and change one rule; every "
                                                  "interest gets one tier and exactly one is core")
    if not res:
        return res

    def retiered(rule):
        out = {}
        for u in users:
            ui = tiered[u]
            new = UserInterests(ui.user, [replace(it, tier=t) for it, t in zip(ui.interests, rule(ui, cfg))],
                                ui.ages, ui.trends_read)
            _order(new)
            out[u] = new
        return out

    rows = {}
    for label, rule in (("your rule", fn), ("default rule", tier_rule)):
        s = recovery(retiered(rule), truth, item_labels, users=users)["summary"].loc["all"]
        rows[label] = {"core found as core": s["core found as core"], "emerging recall": s["emerging recall"],
                       "emerging precision": s["emerging precision"], "fading recall": s["fading recall"],
                       "fading precision": s["fading precision"], "tier score": tier_score(s)}
    table = pd.DataFrame(rows).T
    print(table.round(4).to_string())
    mine, base = table.loc["your rule", "tier score"], table.loc["default rule", "tier score"]
    verdict = ("your rule beats the default" if mine > base + 1e-9 else
               "your rule ties the default" if abs(mine - base) <= 1e-9 else "the default rule is better")
    print(f"On {len(users)} held-out users: {verdict} (tier score {mine:.4f} against {base:.4f}).")
    return res


# ---- 05_cold_start -------------------------------------------------------------------------------------
def cases_blend() -> list[Case]:
    from .profiles import blend_profiles

    rng = _rng(7)
    h, d = _scaled(rng, 4, 5), _scaled(rng, 4, 5)
    h[0] = 0.0  # a brand-new user: no history yet
    out = []
    for label, n, k in [("n = 0, 1, 5, 50 interactions, k = 5", [0, 1, 5, 50], 5.0),
                        ("n = 0, 2, 2, 10 interactions, k = 2", [0, 2, 2, 10], 2.0)]:
        n = np.asarray(n, dtype=float)
        out.append(Case(label, (h, d, n, k), _unit(blend_profiles(h, d, n, k))))
    return out


def _same_directions(got, expected):
    g = as_array(got).astype(float)
    if g.shape != expected.shape:
        return f"shape {g.shape}, expected {expected.shape}"
    norms = np.linalg.norm(g, axis=1)
    if not np.isfinite(g).all() or (norms == 0).any():
        return "a row is zero or not finite"
    cos = (g / norms[:, None] * expected).sum(1)
    r = int(cos.argmin())
    return None if cos[r] > 1 - 1e-5 else f"row {r} points elsewhere (cosine {cos[r]:.4f} with the right profile)"


def check_blend(fn, name: str = "blend") -> Result:
    """``fn(history, description, n_interactions, k)``: w = n / (n + k) of the unit history, the rest description."""
    return check_code(name, fn, cases_blend(), _same_directions,
                      hint="normalise both inputs first; with 0 interactions the description is all you have, and "
                           "history counts more as it grows")


def cases_empty_pages() -> list[Case]:
    from .coldstart import threshold_counts

    rng = _rng(8)
    out = []
    for label, n_users, t in [("6 users, 30 items, threshold 0.5", 6, 0.5), ("6 users, 30 items, threshold 0.3", 6, 0.3),
                              ("4 users, 30 items, threshold 0.99", 4, 0.99)]:
        u, v = _scaled(rng, n_users, 4), _scaled(rng, 30, 4)
        out.append(Case(label, (u, v, t), int((threshold_counts(u, v, t) == 0).sum())))
    return out


def check_empty_pages(fn, name: str = "empty_pages") -> Result:
    """``fn(user_vecs, item_vecs, threshold)``: how many users get no item with cosine ≥ threshold."""
    return check_code(name, fn, cases_empty_pages(), _number(0),
                      hint="cosines, not dot products; a page is empty when no item reaches the threshold")


# ---- 06_evaluation -------------------------------------------------------------------------------------
def _ndcg_ref(rec, rel, k):
    from .metrics import ndcg_at_k

    if not rel:
        return float("nan")
    seen, clean = set(), []
    for j, i in enumerate(rec):  # a repeat earns nothing at its later positions, but keeps its slot
        clean.append(i if i not in seen else ("dup", j))
        seen.add(i)
    return ndcg_at_k([clean], [set(rel)], k).value


def cases_ndcg() -> list[Case]:
    out = []
    for label, rec, rel, k in [("hits at ranks 2 and 4", list("abcd"), set("bdz"), 4),
                               ("more relevant items than k", list("abcde"), set("aceghij"), 3),
                               ("a repeated item", list("aabc"), set("ab"), 4),
                               ("an empty list", [], set("ab"), 5),
                               ("no relevant items", list("abc"), set(), 3),
                               ("a list shorter than k", list("xa"), set("a"), 10)]:
        out.append(Case(label, (rec, rel, k), _ndcg_ref(rec, rel, k)))
    return out


def check_ndcg(fn, name: str = "ndcg_at_k") -> Result:
    """``fn(recommended, relevant, k)`` for one user: NDCG@k with binary gains (a repeat earns nothing; no relevant
    items: nan)."""
    return check_code(name, fn, cases_ndcg(), _number(1e-9),
                      hint="a hit at rank r earns 1 / log2(r + 1); the ideal list puts min(|relevant|, k) hits first; "
                           "an item counts once")


def cases_paired_bootstrap() -> list[Case]:
    from .evaluate import paired_ci

    rng = _rng(9)
    a = rng.uniform(0, 1, 300)
    b = a - 0.02 + rng.normal(0, 0.01, 300)  # strongly paired: the users' spread cancels
    c = rng.uniform(0, 1, 80)
    out = []
    for label, x, y in [("300 users, a close to b", a, b), ("80 users, a equals b", c, c.copy()),
                        ("80 users, unrelated", c, rng.uniform(0, 1, 80))]:
        out.append(Case(label, (x, y, 2000, 0), paired_ci(x, y, n_boot=4000, seed=1)))
    return out


def _interval_close(got, expected):
    try:
        d, lo, hi = (float(v) for v in got)
    except (TypeError, ValueError):
        return "expected (diff, lo, hi), three numbers"
    e_d, e_lo, e_hi = expected
    width = max(e_hi - e_lo, 1e-12)
    if not math.isclose(d, e_d, abs_tol=1e-9):
        return f"the mean difference should be {e_d:.5f}"
    if not (abs(lo - e_lo) <= 0.2 * width + 1e-12 and abs(hi - e_hi) <= 0.2 * width + 1e-12):
        return f"interval [{lo:.5f}, {hi:.5f}] is not the paired 95% interval (width {hi - lo:.5f}, expected about {width:.5f})"
    return None


def check_paired_bootstrap(fn, name: str = "paired_bootstrap") -> Result:
    """``fn(a, b, n_boot, seed)`` → ``(diff, lo, hi)``: mean of a − b and its paired 95% percentile interval."""
    return check_code(name, fn, cases_paired_bootstrap(), _interval_close,
                      hint="draw users with replacement and score both methods on the same draw; the interval is the "
                           "2.5 and 97.5 percentiles of the resampled mean differences")


# ---- 07_finetuning (notebook cells for the lead: /work/handoff/ex_07_08_10.md) ------------------------
def cases_info_nce() -> list[Case]:
    import torch

    from .finetune import info_nce

    g = torch.Generator().manual_seed(10)
    out = []
    for label, b, extra, scale in [("4 anchors, 4 positives", 4, 0, 20.0), ("3 anchors, 3 positives + 4 negatives", 3, 4, 20.0),
                                   ("5 anchors, scale 5", 5, 2, 5.0)]:
        a = torch.randn(b, 6, generator=g) * 3
        c = torch.randn(b + extra, 6, generator=g) * 0.5
        out.append(Case(label, (a, c, scale), float(info_nce(a, c, scale))))
    return out


def check_info_nce(fn, name: str = "info_nce") -> Result:
    """``fn(anchors, candidates, scale)``: InfoNCE; row i of candidates is anchor i's positive, the rest negatives."""
    return check_code(name, fn, cases_info_nce(), _number(1e-4),
                      hint="logits = scale × cosine (normalise both sides); the target of row i is column i; "
                           "average the cross-entropy over anchors")


def adapter_loss(W, anchors, items, positives, scale: float = 20.0):
    """The adapter's training loss, as the library trains it (:func:`course_lib.adapter.adapter_loss`): a softmax over
    the whole catalogue of ``scale`` × cosine(anchors @ W, items @ W), target the positive item of each anchor."""
    from .adapter import adapter_loss as library_loss

    return library_loss(anchors, items, W, positives, scale)


def cases_adapter_step() -> list[Case]:
    import torch

    g = torch.Generator().manual_seed(11)
    out = []
    for label, n_a, n_i, d, lr, scale in [("4 anchors, 10 items, d=5", 4, 10, 5, 0.1, 20.0),
                                          ("2 anchors, 6 items, d=3, scale 5", 2, 6, 3, 0.5, 5.0)]:
        W = torch.eye(d) + 0.1 * torch.randn(d, d, generator=g)
        anchors, items = torch.randn(n_a, d, generator=g), torch.randn(n_i, d, generator=g)
        pos = torch.randint(0, n_i, (n_a,), generator=g)
        w = W.clone().requires_grad_(True)
        adapter_loss(w, anchors, items, pos, scale).backward()
        out.append(Case(label, (W, anchors, items, pos, lr, scale), (W - lr * w.grad).detach()))
    return out


def check_adapter_step(fn, name: str = "adapter_step") -> Result:
    """``fn(W, anchors, items, positives, lr, scale)`` → the new W after one gradient step on :func:`adapter_loss`."""
    return check_code(name, fn, cases_adapter_step(), close(1e-5),
                      hint="normalise both adapted sides (anchors @ W and items @ W), multiply the cosines by scale; "
                           "W appears on both sides: let autograd see both; a step goes against the gradient")


# ---- 08_explanations -----------------------------------------------------------------------------------
TITLES = ["Red Wool Scarf", "Red Wool Scarf Deluxe", "Trail Running Shoes", "Espresso Grinder", "Garden Hose",
          "Blue Yoga Mat", "Noise-Cancelling Headphones", "Cast Iron Pan"]


def _invented(sentence: str, evidence, titles) -> bool:
    """Reference: scan the sentence for catalogue titles, longest first (a longer title hides the shorter one it
    contains), and flag any named title that is not in the evidence."""
    text, named = sentence.lower(), []
    for t in sorted(titles, key=len, reverse=True):
        if t.lower() in text:
            named.append(t)
            text = text.replace(t.lower(), " ")
    return any(t not in set(evidence) for t in named)


def cases_grounding() -> list[Case]:
    out = []
    for label, sentence, evidence in [
        ("grounded: both cited items are in the evidence", "Because you liked Trail Running Shoes and Blue Yoga Mat.",
         ["Trail Running Shoes", "Blue Yoga Mat"]),
        ("an invented second item", "Because you liked Trail Running Shoes and Cast Iron Pan.", ["Trail Running Shoes"]),
        ("an invented first item", "Because you liked Espresso Grinder and Garden Hose.", ["Garden Hose"]),
        ("a longer title than the evidence's", "Because you liked Red Wool Scarf Deluxe.", ["Red Wool Scarf"]),
        ("the evidence's title in other case", "because you liked red wool scarf.", ["Red Wool Scarf"]),
        ("no item named", "Picked for your interest in kitchen tools.", ["Cast Iron Pan"]),
    ]:
        out.append(Case(label, (sentence, evidence, TITLES), _invented(sentence, evidence, TITLES)))
    return out


def _bool(got, expected):
    if not isinstance(got, (bool, np.bool_)):
        return f"expected True or False, got {type(got).__name__}"
    return None if bool(got) == expected else ("an invented item went through" if expected else "a grounded sentence was flagged")


def check_grounding(fn, name: str = "flags_invented") -> Result:
    """``fn(sentence, evidence_titles, catalogue_titles)`` → True when the sentence names a catalogue title that is
    not in the evidence."""
    return check_code(name, fn, cases_grounding(), _bool,
                      hint="look for every catalogue title the sentence names (ignore case; a longer title contains a "
                           "shorter one), then ask whether each is in the evidence")


def cases_content_terms() -> list[Case]:
    rng = _rng(13)
    out = []
    for label, n, weights in [("3 events, equal weights", 3, [1.0, 1.0, 1.0]), ("5 events, recent ones weigh more", 5,
                                                                                [0.1, 0.25, 0.5, 1.0, 1.0]),
                              ("one event", 1, [0.7])]:
        hist, item = _unit(rng.normal(size=(n, 6))), _unit(rng.normal(size=(1, 6)))[0]
        w = np.asarray(weights) / np.sum(weights)
        profile = (w[:, None] * hist).sum(0)
        terms = w * (hist @ item) / np.linalg.norm(profile)
        assert math.isclose(terms.sum(), profile @ item / np.linalg.norm(profile))  # the terms add up to the cosine
        out.append(Case(label, (hist, np.asarray(weights), item), terms))
    return out


def check_content_terms(fn, name: str = "content_terms") -> Result:
    """``fn(history_vecs, weights, item_vec)`` (unit rows) → one term per history event; the terms sum to the cosine
    between the weighted-mean profile and the item (``explain.content_terms``' formula, before merging repeats)."""
    return check_code(name, fn, cases_content_terms(), close(1e-6),
                      hint="the profile is the weighted mean of the history; the cosine divides its dot product by "
                           "the profile's length, so each event's term does too")


# ---- 10_scaling ----------------------------------------------------------------------------------------
def cases_chunked_top_k() -> list[Case]:
    from .rank import top_k

    rng = _rng(12)
    out = []
    for label, n_q, n_i, k, chunk in [("5 queries, 23 items in chunks of 7", 5, 23, 4, 7), ("3 queries, chunks of 1 item", 3, 9, 3, 1),
                                      ("one chunk bigger than the catalogue", 2, 6, 2, 50), ("ties across chunks", 3, 12, 3, 4)]:
        q, v = _scaled(rng, n_q, 5), _scaled(rng, n_i, 5)
        if label.startswith("ties"):
            v[8], v[9] = v[1], v[1] * 2  # the same direction in a later chunk: the lower index comes first
            q[0] = v[1]
        out.append(Case(label, (q, v, k, chunk), top_k(q, v, k)[1]))
    return out


def check_chunked_top_k(fn, name: str = "chunked_top_k") -> Result:
    """``fn(query_vecs, item_vecs, k, chunk_size)`` → ``(n_queries, k)`` item indices, equal to exact top-k (cosine,
    ties by lower index), computing the items ``chunk_size`` rows at a time."""
    return check_code(name, fn, cases_chunked_top_k(), equal,
                      hint="keep a running top-k: merge each chunk's candidates with the best so far, and add the "
                           "chunk's offset to its indices")


def cases_ann_recall() -> list[Case]:
    from .rank import recall_vs_exact

    exact = np.array([[3, 1, 4, 0], [2, 7, 1, 8], [5, 0, 9, 6]])
    out = []
    for label, approx in [("the same items in another order", exact[:, ::-1].copy()),
                          ("each list misses one item; -1 pads a short list", np.array([[3, 1, 4, 9], [2, 7, 1, -1], [6, 5, 0, 2]])),
                          ("lists that swap their items between queries", exact[[1, 2, 0]])]:
        out.append(Case(label, (approx, exact), recall_vs_exact(approx, exact)))
    return out


def check_ann_recall(fn, name: str = "ann_recall") -> Result:
    """``fn(approx_indices, exact_indices)``: mean over queries of the share of the exact top-k the ANN list holds."""
    return check_code(name, fn, cases_ann_recall(), _number(1e-9),
                      hint="per query, the overlap of the two lists as sets (order does not matter, -1 is no item), "
                           "divided by k; then the mean over queries")


# ---- 09_report ---------------------------------------------------------------------------------------
def cases_claim_verdict() -> list[Case]:
    from .evaluate import PairedDiff, _verdict

    out = []
    for label, lo, hi, n in [("interval above 0, 400 users", 0.004, 0.02, 400),
                             ("interval below 0, 400 users", -0.03, -0.001, 400),
                             ("interval covers 0, 400 users", -0.01, 0.02, 400),
                             ("interval covers 0, only 12 users", -0.05, 0.08, 12),
                             ("interval above 0, only 12 users", 0.01, 0.2, 12),
                             ("a mean above 0 whose interval covers 0", -0.001, 0.03, 200),
                             ("no users at all", float("nan"), float("nan"), 0)]:
        diff = 0.0 if n == 0 else (lo + hi) / 2
        p = PairedDiff("article", "other", "ndcg", "all", n, 0.0, 0.0, diff, lo, hi)
        out.append(Case(label, (diff, lo, hi, n), _verdict(p, "article")))
    return out


def check_claim_verdict(fn, name: str = "claim_verdict") -> Result:
    """``fn(diff, lo, hi, n)``: the report's verdict on a claim that the article's method beats another, from the
    paired difference (article − other) over ``n`` users and its interval."""
    return check_code(name, fn, cases_claim_verdict(), equal,
                      hint="the interval decides, not the mean: above 0 'supported', below 0 'refuted', covering 0 "
                           "'mixed (tied)' — unless fewer than 30 users: 'too few users to judge (n)'; no users or no "
                           "interval: 'not testable here'")


def cases_repeat_share() -> list[Case]:
    def log(pairs):
        return pd.DataFrame(pairs, columns=[C.USER, C.ITEM])

    def share(train, test):  # by hand: distinct test (user, item) pairs whose item the user had in training
        seen = set(zip(train[C.USER], train[C.ITEM]))
        pairs = set(zip(test[C.USER], test[C.ITEM]))
        return len(pairs & seen) / len(pairs) if pairs else float("nan")

    out = []
    for label, train, test in [
            ("two users, one repeat", log([("u1", "a"), ("u1", "b"), ("u2", "c")]), log([("u1", "a"), ("u2", "d")])),
            ("a test item bought twice counts once", log([("u1", "a")]), log([("u1", "a"), ("u1", "a"), ("u1", "b")])),
            ("another user's item is not a repeat", log([("u1", "a")]), log([("u2", "a"), ("u2", "b")])),
            ("a user with no training history", log([("u1", "a")]), log([("u9", "a"), ("u1", "a"), ("u1", "c")])),
            ("no repeats at all", log([("u1", "a")]), log([("u1", "b")]))]:
        out.append(Case(label, (train, test), share(train, test)))
    return out


def check_repeat_share(fn, name: str = "repeat_share") -> Result:
    """``fn(train, test)``: the share of the distinct relevant test (user, item) pairs that are repeats (the user had
    the item in training): what the discovery task hides from the lists, and the report's unreachable share."""
    return check_code(name, fn, cases_repeat_share(), _number(1e-9),
                      hint="count distinct (user, item) pairs of the test log; a repeat is a pair that is also in "
                           "the training log (the same user and the same item)")
