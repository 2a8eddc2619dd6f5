"""Hidden cases and checks of 07_finetuning, 08_explanations and 10_scaling (cells for their notebooks: the
lead's hand-off)."""
from __future__ import annotations

import math

import numpy as np

from ..exercises import Case, Result, check_code, close, equal
from ._common import _number, _rng, _scaled, _unit


# ---- 07_finetuning (notebook cells for the lead: /work/handoff/ex_07_08_10.md) ------------------------
def cases_info_nce() -> list[Case]:
    import torch

    from ..finetune import info_nce

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
    from ..adapter import adapter_loss as library_loss

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


def cases_mean_anchor() -> list[Case]:
    from ..adapter import mean_anchors

    rng = _rng(12)
    V = rng.normal(size=(7, 4)).astype(np.float32)
    row_of = {f"i{k}": k for k in range(7)}
    out = []
    for label, ctx in [("three different items", ("i0", "i3", "i5")),
                       ("an item taken twice in the context counts once", ("i2", "i2", "i6")),
                       ("a context of one item", ("i4",)),
                       ("the same item five times", ("i1",) * 5)]:
        out.append(Case(label, (V, list(ctx), row_of), mean_anchors(V, [ctx], row_of)[0]))
    return out


def check_mean_anchor(fn, name: str = "mean_anchor") -> Result:
    """``fn(item_vecs, context_items, row_of)``: a pair's anchor, the mean of its distinct context items' vectors (the
    library's :func:`course_lib.adapter.mean_anchors`)."""
    return check_code(name, fn, cases_mean_anchor(), close(1e-5),
                      hint="look each item up with row_of; an item the user took twice in the context counts once "
                           "(a set of rows); then the mean of those rows, not their sum")


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
    between the weighted-mean profile and the item (the formula of ``Content.contributions``, before merging repeated items)."""
    return check_code(name, fn, cases_content_terms(), close(1e-6),
                      hint="the profile is the weighted mean of the history; the cosine divides its dot product by "
                           "the profile's length, so each event's term does too")


# ---- 10_scaling ----------------------------------------------------------------------------------------
def cases_chunked_top_k() -> list[Case]:
    from ..rank import top_k

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
    from ..rank import recall_vs_exact

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



def _chunks_ok(got, expected):
    n, n_chunks = expected
    try:
        spans = [(int(a), int(b)) for a, b in got]
    except (TypeError, ValueError):
        return "expected a list of (start, stop) pairs"
    if len(spans) != min(n_chunks, n):
        return f"{len(spans)} chunks, expected {min(n_chunks, n)} (no empty chunk, none missing)"
    if spans and (spans[0][0] != 0 or spans[-1][1] != n or any(a[1] != b[0] for a, b in zip(spans, spans[1:]))):
        return f"the chunks {spans[:4]}... do not cover users 0..{n} exactly once, in order"
    sizes = [b - a for a, b in spans]
    if sizes and max(sizes) - min(sizes) > 1:
        return f"chunk sizes {sorted(set(sizes))}: they should differ by at most one user (balanced workers)"
    return None


def cases_user_chunks() -> list[Case]:
    return [Case(label, (n, c), (n, c)) for label, n, c in
            [("10 users, 3 chunks", 10, 3), ("12 users, 4 chunks", 12, 4), ("2 users, 5 chunks", 2, 5),
             ("1,140 users, 7 chunks", 1140, 7), ("1 user, 1 chunk", 1, 1)]]


def check_user_chunks(fn, name: str = "user_chunks") -> Result:
    """``fn(n_users, n_chunks)``: ``(start, stop)`` spans that cover users ``0..n_users`` once, in order, sizes differing
    by at most one, and no empty chunk (fewer chunks than asked when there are fewer users)."""
    return check_code(name, fn, cases_user_chunks(), _chunks_ok,
                      hint="split n into min(n_chunks, n) parts whose sizes differ by at most one (np.array_split's "
                           "rule): the remainder goes one user at a time to the first chunks")
