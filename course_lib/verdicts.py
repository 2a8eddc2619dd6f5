"""The article's claims judged by one run: each claim is a paired comparison on the same users, with its interval.

What it is: the verdict table of notebooks 06 and 09 (:func:`article_verdicts`), the users a tiering claim is judged
on (:func:`tier_test_users`), two datasets' tables side by side (:func:`side_by_side`) and a one-line reading of a
table (:func:`verdict_summary`). Not the harness that scores the lists (``evaluate.py``) and not the methods.

A claim is *supported* when the paired interval of (article's method − the other) lies above 0, *refuted* when it
lies below, *mixed (tied)* when it covers 0 — and *too few users to judge* when it covers 0 on fewer than
:data:`~course_lib.evaluate.MIN_USERS` users. *Not testable here* is kept for a reason in the data (MovieLens has
no pictures and no true tiers), which the caller states in ``reasons``; a method the run simply left out is
*not run*, never "not testable".
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .evaluate import MIN_USERS, N_BOOT, Evaluation, PairedDiff

COLUMNS = ("claim (中文)", "claim", "users", "compared", "difference", "lo", "hi", "ceiling", "evidence", "verdict")

# (key, 中文, English claim): the order of the table. The key names the keyword argument (or role) a claim needs.
CLAIMS = (
    ("overall", "大模型辅助推荐", "the language-model method recommends better than collaborative filtering"),
    ("tail", "覆盖长尾用户", "covers long-tail users better than collaborative filtering"),
    ("new items", "新物品推荐", "recommends new items better than collaborative filtering"),
    ("new items vs TF-IDF", "新物品推荐 (vs TF-IDF)", "recommends new items better than a text baseline without a "
                                                    "language model (TF-IDF)"),
    ("fusion", "多模态融合", "multimodal fusion (text + picture) helps"),
    ("personal", "个性化推荐", "personalisation beats popularity"),
    ("cold users", "冷启动用户", "serves cold-start (new) users better than popularity"),
    ("cold users vs TF-IDF", "冷启动用户 (vs TF-IDF)", "serves new users better than a TF-IDF reading of their words"),
    ("emerging", "兴趣分层 (emerging)", "tiering (slots for emerging interests) helps users whose interest is emerging"),
    ("fading", "兴趣分层 (fading)", "tiering (fewer slots for fading interests) helps users with a fading interest"),
    ("larger model", "依赖大模型性能", "a bigger language model recommends better"),
)


def _verdict(p: PairedDiff | None, better: str) -> str:
    if p is None or p.n == 0:
        return "not testable here"
    if not np.isfinite(p.lo):  # users, but too few for an interval (one user)
        return f"too few users to judge ({p.n})"
    if p.n < MIN_USERS and p.lo <= 0 <= p.hi:
        return f"too few users to judge ({p.n})"
    if p.lo > 0:
        return "supported" if better == p.a else "refuted"
    if p.hi < 0:
        return "refuted" if better == p.a else "supported"
    return "mixed (tied)"


def tier_test_users(truth: pd.DataFrame, test: pd.DataFrame, items: pd.DataFrame) -> dict:
    """Who a tiering claim is judged on, from the ground truth (``ds.truth``): ``{"emerging": users with a test
    item in one of their emerging interests, "fading": users with a true fading interest and any test event}``.

    The truth only *chooses the users*; the methods never read it. Interests are subcategories (the shop's truth)."""
    for name, df, cols in (("truth", truth, (C.USER, C.INTEREST, C.TIER)), ("test", test, (C.USER, C.ITEM)),
                           ("items", items, (C.ITEM, C.SUBCATEGORY))):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{name} is missing column(s) {missing} (found {list(df.columns)}); tier_test_users "
                             f"needs a dataset with true interests per subcategory (the shop)")
    sub = dict(zip(items[C.ITEM], items[C.SUBCATEGORY]))
    t = test[[C.USER, C.ITEM]].assign(interest=test[C.ITEM].map(sub))
    emerging = truth.loc[truth[C.TIER] == "emerging", [C.USER, C.INTEREST]].rename(columns={C.INTEREST: "interest"})
    hit = t.merge(emerging, on=[C.USER, "interest"])
    fading = set(truth.loc[truth[C.TIER] == "fading", C.USER])
    tested = set(test[C.USER])
    return {"emerging": sorted(set(hit[C.USER])), "fading": sorted(fading & tested)}


def article_verdicts(ev: Evaluation, content: str, collaborative: str, text: str | None = None,
                     fused: str | None = None, cold_start: str | None = None, metric: str = "ndcg",
                     n_boot: int = N_BOOT, seed: int = C.SEED, *, tfidf: str | None = None,
                     tiered: str | None = None, untiered: str | None = None, tier_users: dict | None = None,
                     larger: str | None = None, oracle: str | None = None, reasons: dict | None = None,
                     not_run: dict | None = None) -> pd.DataFrame:
    """The article's claims (§3.3.1 and §5's 依赖大模型性能) judged by this run, each with its paired evidence.

    Methods are named as in ``ev``: ``content`` is the article's method (content from language-model vectors) and
    ``collaborative`` the one it claims to improve on (e.g. EASE). Optional, each for its claim: ``tfidf`` (a text
    baseline without a language model), ``text``/``fused`` (text-only and text + picture content), ``cold_start``
    (what reads new users' own words; default ``content``), ``tiered``/``untiered`` with ``tier_users`` (from
    :func:`tier_test_users`), ``larger`` (``content`` with a bigger encoder), ``oracle`` (the generator's own
    probabilities: the ``ceiling`` column, its mean on the same users). ``reasons``: ``{claim key or 中文: why the
    data cannot test it}`` (verdict *not testable here*); ``not_run``: ``{claim key or 中文: how to run it}``, said
    in the evidence of a claim the run left out (verdict *not run*). Columns: :data:`COLUMNS` (``users``, ``difference``, ``lo``, ``hi`` as numbers)."""
    if not isinstance(ev, Evaluation):
        raise TypeError(f"ev must be an Evaluation (from evaluate(...)), got {type(ev).__name__}")
    reasons, not_run = dict(reasons or {}), dict(not_run or {})
    k, cs = ev.k, cold_start or content
    has_pop = "popularity" in ev.methods
    tier_users = tier_users or {}
    # key -> (a, b, better, metric, selection kwargs, what is measured); None where the run lacks a method
    spec = {
        "overall": (content, collaborative, {}, f"{metric}@{k}, all users"),
        "tail": (content, collaborative, {"segment": "tail"}, f"{metric}@{k}, tail users (1–4 training interactions)"),
        "new items": (content, collaborative, {"metric": "new-item recall"},
                      f"recall@{k} of test items nobody had in training"),
        "new items vs TF-IDF": (content, tfidf, {"metric": "new-item recall"},
                                f"recall@{k} of test items nobody had in training"),
        "fusion": (fused, text, {}, f"{metric}@{k}, all users"),
        "personal": (content, "popularity" if has_pop else None, {"group": "returning"},
                     f"{metric}@{k}, returning users"),
        "cold users": (cs, "popularity" if has_pop else None, {"group": "new"},
                       f"{metric}@{k}, new users ({cs} gives them: {ev.fallbacks.get(cs, '?')})"),
        "cold users vs TF-IDF": (cs, tfidf, {"group": "new"}, f"{metric}@{k}, new users"),
        "emerging": (tiered, untiered, {"users": tier_users.get("emerging"), "label": "emerging users"},
                     f"{metric}@{k}, users with a test item in an emerging true interest"),
        "fading": (tiered, untiered, {"users": tier_users.get("fading"), "label": "fading users"},
                   f"{metric}@{k}, users with a fading true interest"),
        "larger model": (larger, content, {}, f"{metric}@{k}, all users"),
    }
    rows = []
    for key, zh, en in CLAIMS:
        a, b, sel, what = spec[key]
        reason = reasons.get(key, reasons.get(zh))
        row = {"claim (中文)": zh, "claim": en, "users": 0, "compared": "", "difference": np.nan, "lo": np.nan,
               "hi": np.nan, "ceiling": np.nan}
        needs_users = "users" in sel
        if reason is not None:
            rows.append({**row, "evidence": str(reason), "verdict": "not testable here"})
            continue
        if a is None or b is None or (needs_users and sel["users"] is None):
            missing = [n for n, v in (("first", a), ("second", b)) if v is None]
            lack = "list of the users it concerns (tier_users)" if not missing else "method for it"
            how = not_run.get(key, not_run.get(zh))
            rows.append({**row, "evidence": f"not in this run (it has no {lack})" + (f": {how}" if how else ""),
                         "verdict": "not run"})
            continue
        kw = {"metric": metric, **sel}
        p = ev.compare(a, b, n_boot=n_boot, seed=seed, **kw)
        row.update(users=p.n, compared=f"{a} − {b}")
        if p.n == 0:
            rows.append({**row, "evidence": f"{what}: no users of that kind in this run",
                         "verdict": "not testable here"})
            continue
        if oracle is not None and oracle in ev.methods:  # its mean over the same users
            same = ev.paired_values(a, b, **{k: v for k, v in kw.items() if k != "label"}).index
            row["ceiling"] = float(ev.paired_values(oracle, b, **{k: v for k, v in kw.items() if k != "label"})
                                   .loc[lambda w: w.index.isin(same), oracle].mean())
        ceiling = "" if np.isnan(row["ceiling"]) else f"; the generator oracle {row['ceiling']:.4f}"
        row.update(difference=p.diff, lo=p.lo, hi=p.hi)
        rows.append({**row, "evidence": f"{what}, {p.n} users: {p.a} {p.mean_a:.4f} vs {p.b} {p.mean_b:.4f}, "
                                        f"difference {p.diff:+.4f} [{p.lo:+.4f}, {p.hi:+.4f}]{ceiling}",
                     "verdict": _verdict(p, a)})
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    out["users"] = out["users"].astype(int)
    return out


def side_by_side(tables: dict) -> pd.DataFrame:
    """``{dataset name: article_verdicts(...)}`` as one table, a row per claim: per dataset its users, the paired
    difference with its interval, and the verdict. The claims and their definitions are the same on every dataset
    (one function made each table); a claim a dataset cannot test says why in its evidence."""
    if not isinstance(tables, dict) or not tables:
        raise ValueError("tables must be a non-empty dict {dataset name: article_verdicts(...) table}")
    out = None
    for name, t in tables.items():
        if not isinstance(t, pd.DataFrame) or not set(COLUMNS) <= set(t.columns):
            raise TypeError(f"tables[{name!r}] must be a table from article_verdicts, got "
                            f"{type(t).__name__} with columns {list(getattr(t, 'columns', []))}")
        diff = [f"{d:+.4f} [{lo:+.4f}, {hi:+.4f}]" if np.isfinite(lo) else (f"{d:+.4f}" if np.isfinite(d) else "–")
                for d, lo, hi in zip(t["difference"], t["lo"], t["hi"])]
        part = pd.DataFrame({f"{name}: users": t["users"].to_numpy(), f"{name}: difference [95%]": diff,
                             f"{name}: verdict": [v if v != "not testable here" else f"not testable ({e})"
                                                  for v, e in zip(t["verdict"], t["evidence"])]},
                            index=pd.Index(t["claim (中文)"], name="claim"))
        out = part if out is None else out.join(part, how="outer")
    order = [zh for _, zh, _ in CLAIMS]
    return out.loc[[c for c in order if c in out.index] + [c for c in out.index if c not in order]]


def verdict_summary(table: pd.DataFrame) -> str:
    """One sentence from a verdict table: which claims this run supports, refutes, finds tied, cannot test."""
    if not isinstance(table, pd.DataFrame) or "verdict" not in table.columns:
        raise TypeError("table must be a table from article_verdicts")
    groups = {}
    for zh, v in zip(table["claim (中文)"], table["verdict"]):
        key = "too few users" if v.startswith("too few") else v
        groups.setdefault(key, []).append(zh)
    parts = [f"{label}: {', '.join(groups[key])}" for key, label in
             (("supported", "supported"), ("refuted", "refuted"), ("mixed (tied)", "tied"),
              ("too few users", "too few users to judge"), ("not testable here", "not testable with this data"),
              ("not run", "not run")) if key in groups]
    return "; ".join(parts) + "."
