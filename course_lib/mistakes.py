"""The article's remaining mistakes, measured: each function computes one flaw on the run's data and returns the
numbers with the sentence a notebook prints, so the prose changes when the data does.

Not the metrics (``metrics``), the methods (``baselines``) or the harness (``evaluate``): this module only reads them.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import checks
from . import metrics as M

# ---- 准确率: the article's "accuracy" is precision ---------------------------------------------------------


def _relevance(ev, train: pd.DataFrame, test: pd.DataFrame, method: str):
    """The evaluated users of ``ev`` with their relevant rows and hidden rows, as ``evaluate`` built them."""
    from . import constants as C
    from .evaluate import _relevance as relevance, _sets

    if method not in ev.lists:
        raise ValueError(f"method {method!r} is not in this evaluation; choose one of {list(ev.lists)}")
    cat = ev.models[method].catalogue
    users = list(ev.lists[method][0])
    test_rows = _sets(test[C.USER], cat.rows(test[C.ITEM], what="test item_id"))
    seen = _sets(train[C.USER], cat.rows(train[C.ITEM], what="train item_id"))
    missing = [u for u in users if u not in test_rows]
    if missing:
        raise ValueError(f"user {missing[0]!r} of the evaluation has no test rows: pass the train and test of the "
                         "split that ev was made from")
    rel, hide = relevance(ev.task, test_rows, seen, users)
    return users, rel, hide


def _lists(ev, method: str) -> list:
    return [[int(i) for i in r if i >= 0] for r in ev.lists[method][1]]


def accuracy_vs_precision(ev, train: pd.DataFrame, test: pd.DataFrame, methods) -> tuple[pd.DataFrame, str]:
    """The article's 准确率 ("accuracy" = relevant recommended / recommended) next to precision@k and classification
    accuracy over the catalogue, per method. Returns ``(table, sentence)``."""
    rows = {}
    for m in methods:
        _, rel, _ = _relevance(ev, train, test, m)
        recs, n_items = _lists(ev, m), len(ev.models[m].catalogue)
        article = np.mean([len(set(r) & s) / len(r) for r, s in zip(recs, rel) if r and s])  # the article's line
        rows[m] = {"article's accuracy": article, f"precision@{ev.k}": M.precision_at_k(recs, rel, ev.k).value,
                   f"classification accuracy@{ev.k}": M.classification_accuracy_at_k(recs, rel, ev.k, n_items).value}
    t = pd.DataFrame(rows).T
    same = np.allclose(t["article's accuracy"], t[f"precision@{ev.k}"])
    acc = t[f"classification accuracy@{ev.k}"]
    sentence = (f"The article's accuracy {'equals' if same else 'differs from'} precision@{ev.k} for every method "
                f"here{'' if same else ' (some lists are shorter than k)'}: it is precision. Accuracy proper, every "
                f"item classified as in or out of the list, ranges only from {acc.min():.4f} to {acc.max():.4f} "
                f"across these methods, because nearly every item is rightly left out of every list; it cannot "
                "tell a good list from a bad one.")
    return t, sentence


# ---- F1 for ranked lists ------------------------------------------------------------------------------------


def f1_table(ev, train: pd.DataFrame, test: pd.DataFrame, methods) -> tuple[pd.DataFrame, str]:
    """precision@k, recall@k and F1@k per method, and a sentence on what F1 adds. Returns ``(table, sentence)``."""
    rows = {}
    for m in methods:
        _, rel, _ = _relevance(ev, train, test, m)
        recs = _lists(ev, m)
        rows[m] = {"precision": M.precision_at_k(recs, rel, ev.k).value, "recall": M.recall_at_k(recs, rel, ev.k).value,
                   "F1": M.f1_at_k(recs, rel, ev.k).value, "ndcg": M.ndcg_at_k(recs, rel, ev.k).value}
    t = pd.DataFrame(rows).T
    smaller = np.minimum(t["precision"], t["recall"])
    near = (t["F1"] <= 2 * smaller + 1e-12).all()  # harmonic mean: min ≤ F1 ≤ 2·min
    prec_smaller = int((t["precision"] < t["recall"]).sum())
    same_order = list(t["F1"].rank(ascending=False, method="min")) == list(t["ndcg"].rank(ascending=False, method="min"))
    best = t["F1"].idxmax()
    sentence = (f"F1@{ev.k} is the harmonic mean of precision and recall, so it is held down by the smaller one: "
                f"precision is the smaller for {prec_smaller} of {len(t)} methods here (for one user, precision < recall "
                f"exactly when the user has fewer than k = {ev.k} relevant items), and F1 lies between that smaller value and twice it for "
                f"{'every method' if near else 'not every method'}. It adds one number that needs both a clean and a "
                f"complete list; it ignores the order inside the top {ev.k}. Ranked by F1, {best} comes first and the "
                f"methods {'keep' if same_order else 'do not keep'} NDCG's order.")
    return t, sentence


# ---- AUC vs NDCG: the whole catalogue vs the top of the list ------------------------------------------------


def placement(ev, train: pd.DataFrame, test: pd.DataFrame, methods) -> pd.DataFrame:
    """Where each method puts the relevant items of returning users (new users get the fallback: no signal).

    Every share is averaged over users, as AUC and NDCG are: AUC, NDCG@k, the share of relevant items ranked in the
    top k, in the worst quarter of the catalogue, scored exactly 0 (tied with every other item scored 0) and scored
    below 0; and the median rank (mean over users of each user's median).
    """
    out = {}
    for m in methods:
        users, rel, hide = _relevance(ev, train, test, m)
        model = ev.models[m]
        keep = [i for i, u in enumerate(users) if model.has_history([u])[0]]
        scores = model.score([users[i] for i in keep])
        rel_k, hide_k = [rel[i] for i in keep], [hide[i] for i in keep]
        ranks = M.relevant_ranks(scores, rel_k, hide_k)
        n_visible = [scores.shape[1] - len(h) for h in hide_k]
        rel_scores = [scores[u, sorted(r)] for u, r in enumerate(rel_k)]
        out[m] = {"AUC": float(np.nanmean(M.auc_per_user(scores, rel_k, hide_k))),
                  f"NDCG@{ev.k}": M.ndcg_at_k([_lists(ev, m)[i] for i in keep], rel_k, ev.k).value,
                  f"relevant in top {ev.k}": float(np.mean([(r <= ev.k).mean() for r in ranks])),
                  "relevant in worst quarter": float(np.mean([(r > 0.75 * n).mean() for r, n in zip(ranks, n_visible)])),
                  "relevant scored 0": float(np.mean([(s == 0).mean() for s in rel_scores])),
                  "relevant scored < 0": float(np.mean([(s < 0).mean() for s in rel_scores])),
                  "median rank": float(np.mean([np.median(r) for r in ranks])), "users": len(keep)}
    return pd.DataFrame(out).T


def auc_vs_ndcg_sentence(table: pd.DataFrame, a: str, b: str, k: int) -> str:
    """What ``placement``'s table says about method ``a`` against ``b`` on AUC and NDCG, true for either outcome."""
    for m in (a, b):
        if m not in table.index:
            raise ValueError(f"method {m!r} is not in the placement table; it has {list(table.index)}")
    ra, rb = table.loc[a], table.loc[b]
    top, worst, zero, neg = f"relevant in top {k}", "relevant in worst quarter", "relevant scored 0", "relevant scored < 0"
    auc_a_wins, ndcg_a_loses = ra["AUC"] > rb["AUC"], ra[f"NDCG@{k}"] < rb[f"NDCG@{k}"]
    head = (f"{a} has AUC {ra['AUC']:.4f} against {b}'s {rb['AUC']:.4f}, and NDCG@{k} {ra[f'NDCG@{k}']:.4f} against "
            f"{rb[f'NDCG@{k}']:.4f}. ")
    where = (f"{b} ranks {rb[top]:.1%} of a user's relevant items in the top {k} against {a}'s {ra[top]:.1%}, and "
             f"{rb[worst]:.1%} in the worst quarter of the catalogue against {ra[worst]:.1%}. "
             f"{b} scores {rb[neg]:.1%} of them below 0 and {rb[zero]:.1%} exactly 0; {a} {ra[neg]:.1%} and "
             f"{ra[zero]:.1%}. ")
    if auc_a_wins and ndcg_a_loses and rb[worst] > ra[worst]:
        why = (f"So {b} lifts more relevant items to the top, where NDCG looks, but buries more at the bottom, which "
               "AUC counts as heavily as the top: it asks whether a relevant item outranks an irrelevant one "
               "*anywhere* in the catalogue. A score below 0 ranks under every item scored 0, and a tie at 0 counts "
               f"half. For a list of {k}, NDCG is the number to trust.")
    elif auc_a_wins and ndcg_a_loses:
        why = (f"{a} wins on AUC and loses on NDCG here, but not because {b} buries more relevant items in the worst "
               "quarter; the difference lies in the middle of the ranking, which AUC counts and NDCG does not.")
    else:
        why = (f"This run does not show {a} winning on AUC while losing on NDCG: "
               f"{a} is {'higher' if auc_a_wins else 'not higher'} on AUC and {'lower' if ndcg_a_loses else 'not lower'} "
               "on NDCG. The two metrics still answer different questions: AUC weighs every rank of the catalogue "
               f"alike, NDCG only the top {k}.")
    return head + where + why


# ---- stop words before a transformer -----------------------------------------------------------------------


def strip_stop_words(text: str, stop_words) -> str:
    """The article's preprocessing (去除停用词): drop every word in ``stop_words`` (case-insensitive, punctuation kept
    off the word it ends)."""
    checks.text("text", text)
    stop = {w.lower() for w in stop_words}
    words = [w for w in text.split() if w.lower().strip(".,;:!?") not in stop]
    return " ".join(words)


def stop_word_effect(encoder, texts, stop_words) -> pd.DataFrame:
    """Per text: the tokens the transformer sees with and without stop words, and the cosine between the two
    sentence vectors (``encoder`` normalises, so a dot product is the cosine)."""
    texts = checks.texts("texts", texts)
    stripped = [strip_stop_words(t, stop_words) for t in texts]
    full_v, strip_v = encoder.encode(texts), encoder.encode(stripped)
    tok = encoder.tokenizer
    return pd.DataFrame({"text": texts, "stripped": stripped,
                         "tokens": [len(tok.tokenize(t)) for t in texts],
                         "tokens stripped": [len(tok.tokenize(t)) for t in stripped],
                         "cosine(full, stripped)": (full_v * strip_v).sum(1)})


def stop_word_sentence(effect: pd.DataFrame, retrieval: dict | None = None, n_boot: int = 1000, seed: int = 0) -> str:
    """Summarise :func:`stop_word_effect`, and optionally a retrieval measure ``{"full": ..., "stripped": ...}``:
    per-user arrays (the same users, in the same order) are compared **paired**, with a bootstrap interval, and the
    sentence says *helps*, *hurts* or *no measurable difference*; two plain numbers are only reported."""
    lost = 1 - effect["tokens stripped"].sum() / effect["tokens"].sum()
    cos = effect["cosine(full, stripped)"]
    s = (f"Stripping stop words removes {lost:.0%} of the tokens the transformer reads and moves each sentence's "
         f"vector: its cosine with the original ranges from {cos.min():.3f} to {cos.max():.3f} across sentences.")
    if retrieval is None:
        return s
    full, stripped = np.asarray(retrieval["full"], float), np.asarray(retrieval["stripped"], float)
    if full.ndim == 0:
        return s + f" On retrieval: {float(stripped):.3f} stripped against {float(full):.3f} with the whole sentence."
    if full.shape != stripped.shape or len(full) < 2:
        raise ValueError(f"retrieval['full'] and retrieval['stripped'] must be per-user arrays of one length (>= 2), "
                         f"got {full.shape} and {stripped.shape}")
    from .evaluate import paired_ci

    d, lo, hi = paired_ci(stripped, full, n_boot=n_boot, seed=seed)
    word = "helps" if lo > 0 else "hurts" if hi < 0 else "makes no measurable difference"
    return s + (f" On retrieval it {word}: {stripped.mean():.3f} stripped against {full.mean():.3f} with the whole "
                f"sentence, paired over {len(full)} users: {d:+.3f} [{lo:+.3f}, {hi:+.3f}].")


# ---- an uninformative cold-start sentence ------------------------------------------------------------------


def description_signal(query_vecs, item_vecs, item_labels, k: int = 10) -> pd.DataFrame:
    """Per query vector: the best cosine, the spread (best minus the catalogue's median cosine) and how many distinct
    labels its top k spans. A description that names an interest scores a few items far above the rest, all of one
    or two kinds; one that names nothing does not."""
    q = checks.matrix("query_vecs", query_vecs)
    v = checks.matrix("item_vecs", item_vecs, cols=q.shape[1])
    labels = np.asarray(item_labels)
    if len(labels) != len(v):
        raise ValueError(f"item_labels has {len(labels)} entries but item_vecs {len(v)} rows: one label per item")
    k = checks.integer("k", k, min=1, max=len(v))
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    sims = qn @ vn.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return pd.DataFrame({"best cosine": sims.max(1), "spread": sims.max(1) - np.median(sims, axis=1),
                         f"kinds in top {k}": [len(set(labels[r])) for r in top]})


def cold_sentence_verdict(signal: pd.DataFrame, reference: pd.DataFrame, sentence: str) -> str:
    """Compare one sentence's :func:`description_signal` row with those of real descriptions and say what to serve.

    The rule: a sentence names no interest when its spread is below the real descriptions' 5th percentile, **or**
    its top list spans more kinds than 90% of theirs (a list scattered over the catalogue). Real descriptions include
    vague ones, so either test alone misses some; the two together are a shop's heuristic, not a proof."""
    spread = float(signal["spread"].iloc[0])
    kinds_col = [c for c in signal.columns if c.startswith("kinds in top")][0]
    kinds = int(signal[kinds_col].iloc[0])
    below = float((reference["spread"] > spread).mean())
    floor = float(reference["spread"].quantile(0.05))
    cap = float(reference[kinds_col].quantile(0.9))
    low, scattered = spread < floor, kinds > cap
    serve = "popularity, as for a user who wrote nothing" if low or scattered else "its own list"
    return (f"{sentence!r}: spread {spread:.3f}, lower than that of {below:.0%} of the {len(reference)} real "
            f"descriptions (their median {reference['spread'].median():.3f}, 5th percentile {floor:.3f}: "
            f"{'below' if low else 'not below'}); its top list spans {kinds} kinds (real descriptions: median "
            f"{reference[kinds_col].median():.0f}, 90th percentile {cap:.0f}: {'more' if scattered else 'not more'}). "
            f"By the rule (either test) it should get {serve}.")


# ---- why a 22M-parameter model stands in for "the large model" -------------------------------------------------


def model_size(model) -> dict:
    """Parameters, layers and vector size of a Hugging Face encoder (a ``torch.nn.Module`` with a ``config``)."""
    if not hasattr(model, "parameters") or not hasattr(model, "config"):
        raise TypeError(f"model must be a Hugging Face model (e.g. TextEncoder(...).model), got {type(model).__name__}")
    cfg = model.config
    return {"parameters (M)": sum(p.numel() for p in model.parameters()) / 1e6,
            "layers": int(getattr(cfg, "num_hidden_layers", 0)), "vector size": int(cfg.hidden_size)}
