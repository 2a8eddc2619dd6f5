"""Sentences computed from results: the prose under a figure or a table, so a re-run on other data never carries a
stale number or a verdict its interval does not support.

Not analysis (the numbers come from ``evaluate``, ``recovery``, ``explain``) and not drawing (``plots``).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import constants as C


def _get(p, *names):
    for n in names:
        if isinstance(p, dict) or isinstance(p, pd.Series):
            if n in p:
                return p[n]
        elif hasattr(p, n):
            return getattr(p, n)
    raise ValueError(f"paired result {p!r} has none of {names}; pass an evaluate.PairedDiff or a row with "
                     "a, b, diff, lo, hi (evaluate.paired_to_dict)")


def _fmt(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}".replace("-", "−")


def paired_verdict(lo: float, hi: float) -> str:
    """"above", "below", "tied" or "untested" (no interval) for an interval of a difference a − b."""
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return "untested"
    return "above" if lo > 0 else "below" if hi < 0 else "tied"


def paired_sentence(p, digits: int = 4, what: str | None = None) -> str:
    """One sentence for a paired difference a − b: the difference, its 95% interval, the users, and the verdict the
    interval supports ("tied" whenever it covers 0, however large the ratio of the means).

    ``p``: an ``evaluate.PairedDiff`` or a row with a, b, diff, lo, hi (and optionally metric, users or n).
    """
    a, b = _get(p, "a"), _get(p, "b")
    diff, lo, hi = float(_get(p, "diff")), float(_get(p, "lo")), float(_get(p, "hi"))
    try:
        n = int(_get(p, "users", "n"))
    except (ValueError, TypeError):
        n = None
    try:
        metric = what or _get(p, "metric")
    except ValueError:
        metric = what or "the score"
    users = f" over {n} users" if n is not None else ""
    verdict = paired_verdict(lo, hi)
    if verdict == "untested":
        return f"{a} − {b} on {metric}{users}: {_fmt(diff, digits)}, with no interval (too few users to judge)."
    reading = {"above": f"{a} is better (the interval lies above 0)",
               "below": f"{b} is better (the interval lies below 0)",
               "tied": "tied (the interval covers 0)"}[verdict]
    return (f"{a} − {b} on {metric}{users}: {_fmt(diff, digits)} [{_fmt(lo, digits)}, {_fmt(hi, digits)}]: "
            f"{reading}.")


def paired_figure_sentence(paired: pd.DataFrame, digits: int = 4) -> str:
    """The sentence under a figure of paired differences (``plots.plot_paired_by_group``): per panel (group), which
    methods lie above the reference, which below, which are tied with it, with the clearest difference quoted."""
    need = {"group", "a", "b", "diff", "lo", "hi"}
    if not isinstance(paired, pd.DataFrame) or not need <= set(paired.columns) or paired.empty:
        raise ValueError(f"paired must be a non-empty DataFrame with columns {sorted(need)}; "
                         "pass the frame you drew with plots.plot_paired_by_group")
    parts = []
    for group, g in paired.groupby("group", sort=False):
        ref = g["b"].iloc[0]
        v = [paired_verdict(lo, hi) for lo, hi in zip(g["lo"], g["hi"])]
        g = g.assign(verdict=v)
        said = []
        for kind, word in (("above", "above"), ("below", "below")):
            rows = g[g["verdict"] == kind]
            if len(rows):
                r = rows.loc[rows["diff"].abs().idxmax()]
                said.append(f"{', '.join(rows['a'])} {word} it (e.g. {r['a']} {_fmt(r['diff'], digits)} "
                            f"[{_fmt(r['lo'], digits)}, {_fmt(r['hi'], digits)}])")
        tied = g.loc[g["verdict"] == "tied", "a"].tolist()
        if tied:
            said.append(f"{', '.join(tied)} tied with it")
        untested = g.loc[g["verdict"] == "untested", "a"].tolist()
        if untested:
            said.append(f"{', '.join(untested)} untested (too few users)")
        parts.append(f"on {group}, against {ref}: " + "; ".join(said))
    text = "; ".join(parts) if len(parts) == 1 else ". ".join(p[0].upper() + p[1:] for p in parts)
    return text[0].upper() + text[1:] + ". An interval that covers 0 is a tie, whatever the means say."


def story_recovery(pairs: pd.DataFrame, user) -> str:
    """How well one user's discovered tiers match their true ones, said plainly (including when badly).

    ``pairs``: ``recovery(...)["pairs"]`` (columns user_id, label, true, found).
    """
    need = {C.USER, "label", "true", "found"}
    if not isinstance(pairs, pd.DataFrame) or not need <= set(pairs.columns):
        raise ValueError(f"pairs must be recovery(...)['pairs'] with columns {sorted(need)}")
    mine = pairs[pairs[C.USER] == user]
    true = mine[mine["true"] != "none (exploration)"]
    if true.empty:
        return f"{user} has no true interest the tiering could be checked against."
    right = true[true["true"] == true["found"]]
    said = "; ".join(f"{r.label} ({r.true}) found as {'**' + r.found + '**' if r.true != r.found else r.found}"
                     for r in true.itertuples())
    share = len(right) / len(true)
    how = "well" if share == 1 else "partly" if share >= 0.5 else "badly"
    rule = ("every true tier found" if share == 1 else "at least half found" if share >= 0.5 else
            "fewer than half found")
    extra = mine[mine["true"] == "none (exploration)"]
    tail = (f" {len(extra)} discovered interest(s) match no true interest (exploration: gifts, curiosity), tiered "
            f"{', '.join(sorted(set(extra['found'])))}." if len(extra) else "")
    return (f"Against the truth, {user}'s tiers are recovered {how} ({len(right)} of {len(true)} true interests in "
            f"their own tier; {rule}): {said}.{tail}")


def emerging_reading(ev, recovered: set, reference: str = "single vector", method: str = "tier-aware",
                     n_boot: int = 1000, seed: int = C.SEED) -> str:
    """Notebook 04's reading of the tier-aware comparison: NDCG and emerging-interest recall as paired differences
    (tied when the interval covers 0), and how emerging recall depends on whether the training period showed the
    interest (``recovered``: users whose true emerging interest was found as emerging in training)."""
    k = ev.k
    nd = ev.compare(method, reference, "ndcg", n_boot=n_boot, seed=seed)
    em = ev.compare(method, reference, "emerging-interest recall", n_boot=n_boot, seed=seed)
    pu = ev.per_user[ev.per_user["emerging-interest recall"].notna()].assign(
        found=lambda d: d["user"].isin(set(recovered)))
    by = pu.groupby(["found", "method"])["emerging-interest recall"].mean().unstack()
    users = pu.loc[pu["method"] == method, "found"]
    out = [f"NDCG@{k}: {paired_sentence(nd, what=f'ndcg@{k}')}",
           f"Emerging-interest recall: {paired_sentence(em)[:-1]}; the means are {em.mean_a:.4f} against "
           f"{em.mean_b:.4f}, "
           + ("but a ratio of means is no evidence while the interval covers 0." if paired_verdict(em.lo, em.hi) == "tied"
              else "and the interval, not their ratio, is the evidence.")]
    if len(users) and True in by.index and False in by.index:
        out.append(f"Only {users.mean():.0%} of the {len(users)} users with such test items had their emerging "
                   f"interest found as emerging in the training period (it starts late in the log); for them, "
                   f"{method} recalls {by.loc[True, method]:.3f} of it against {by.loc[True, reference]:.3f}, for "
                   f"the others {by.loc[False, method]:.3f} against {by.loc[False, reference]:.3f}.")
    return " ".join(out)


def coverage_reading(table: pd.DataFrame, ev, methods=("tier-aware", "multi-interest", "single vector")) -> str:
    """Interest coverage of each method (``table``: per-method means with an "interest coverage" column) and how
    many test users could show a fading interest at all."""
    cov = table["interest coverage"]
    n_fading = int(ev.per_user.loc[ev.per_user["method"] == methods[0], "fading-interest recall"].notna().sum())
    most = cov.idxmax()
    return (f"Interest coverage: " + ", ".join(f"{cov[m]:.2f} ({m})" for m in methods if m in cov)
            + f": {most} covers most; only {n_fading} of the {ev.users['evaluated']} test users have any test item "
            "from a true fading interest, so this test period can hardly price dropping them.")


def fidelity_pairs(fid: dict, k: int, n_boot: int = 1000, seed: int = C.SEED) -> pd.DataFrame:
    """Per method, the paired difference "leaves the top k with the cited items removed" − "with random ones
    removed", in the frame ``plots.plot_paired_by_group`` draws (one group, the random removal as reference)."""
    from .evaluate import paired_ci

    rows = []
    for name, f in fid.items():
        cited = f[f"leaves top-{k} (cited removed)"].astype(float).to_numpy()
        rand = f[f"leaves top-{k} (random removed)"].astype(float).to_numpy()
        d, lo, hi = paired_ci(cited, rand, n_boot=n_boot, seed=seed)
        rows.append({"group": "fidelity", "a": name, "b": "random items removed", "diff": d, "lo": lo, "hi": hi,
                     "users": len(f)})
    return pd.DataFrame(rows)


def ray_cost_reading(one_s: float, ray_s: float, cpus: float, workers: int) -> str:
    """Notebook 10's reading of encoding in one process against Ray workers on the same machine: who won, the
    throughput ratio, and where Ray's overhead comes from."""
    for name, v in (("one_s", one_s), ("ray_s", ray_s)):
        if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a positive number of seconds, got {v!r}")
    ratio = one_s / ray_s
    who = ("Ray wins here (more than 10% faster)" if ratio > 1.1 else
           "One process wins here (Ray more than 10% slower)" if ratio < 1 / 1.1 else
           "A tie here (within 10%)")
    return (f"Compute cost (计算成本高), measured: on this machine ({cpus:.0f} CPU cores) Ray with {workers} workers "
            f"took {ray_s:.1f} s against {one_s:.1f} s for one process, {ratio:.2f}× the throughput. {who}: both "
            "sides use the same cores, and Ray adds starting its workers, loading the model once per worker and "
            "moving batches between processes. Ray pays off when there is more hardware than one process can use "
            "(more machines, or one GPU per worker), which this notebook does not measure; `benchmarks/bench_scale.py` "
            "compares 1 and 2 workers.")


def _and_join(words: list) -> str:
    return " and ".join(words) if len(words) < 3 else ", ".join(words[:-1]) + " and " + words[-1]


def index_verdict(a: pd.Series, b: pd.Series, k: int) -> str:
    """Which of two index rows wins on recall, query time, memory and build time; times within 10% (noisy on a
    shared machine) and recall within 1% are ties, memory must be equal to tie."""
    wins, ties = {}, []
    for what, col, higher, margin in [("recall", f"recall@{k}", True, 0.01), ("query time", "ms per query", False, 0.1),
                                      ("memory", "MiB", False, 0.0), ("build time", "build s", False, 0.1)]:
        x, y = (a[col], b[col]) if higher else (b[col], a[col])
        name = a["index"] if x > y * (1 + margin) else b["index"] if y > x * (1 + margin) else None
        if name:
            wins.setdefault(name, []).append(what)
        else:
            ties.append(f"{what} (within {margin:.0%})" if margin else f"{what} (equal)")
    out = "; ".join(f"{name} wins on {_and_join(w)}" for name, w in wins.items())
    return out + (f"; they tie on {_and_join(ties)}" if ties else "")


def index_reading(table: pd.DataFrame, k: int, pq_m: int, rerank: int) -> str:
    """Notebook 10's reading of the exact / HNSW / IVF-PQ / IVF-PQ + re-rank table (rows in the order measured:
    one exact row, then each index's settings from the narrowest search to the widest)."""
    need = {"index", "setting", "build s", "MiB", "ms per query", f"recall@{k}"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"table must be notebook 10's index table with columns {sorted(need)}")
    kinds = set(table["index"])
    if not {"exact", "HNSW", "IVF-PQ", "IVF-PQ + re-rank"} <= kinds:
        raise ValueError(f"table must hold exact, HNSW, IVF-PQ and IVF-PQ + re-rank rows, got {sorted(kinds)}")
    rec = f"recall@{k}"

    def rows_of(kind):
        return table[table["index"] == kind]

    def best_row(kind):  # an index's highest recall (the first, cheapest setting that reaches it)
        rows = rows_of(kind)
        return rows.loc[rows[rec].idxmax()]

    def describe(row):
        return (f"**{row['index']}** ({row['setting']}) finds {row[rec]:.1%} of the exact top-{k} in "
                f"{row['ms per query']:.3f} ms per query, with {row['MiB']:,.0f} MiB and {row['build s']:.1f} s of "
                "build")

    ex, h, r = rows_of("exact").iloc[0], best_row("HNSW"), best_row("IVF-PQ + re-rank")
    q0, q = rows_of("IVF-PQ").iloc[0], rows_of("IVF-PQ").iloc[-1]  # the narrowest and the widest search
    lo, hi = (h, r) if h[rec] <= r[rec] else (r, h)
    hi_rows = rows_of(hi["index"])
    match = hi_rows[hi_rows[rec] >= lo[rec]].sort_values("ms per query").iloc[0]
    ratio = match["ms per query"] / lo["ms per query"]
    pace = "about as fast" if abs(ratio - 1) <= 0.1 else f"{ratio:.1f}× slower" if ratio > 1 else f"{1 / ratio:.1f}× faster"
    hn = rows_of("HNSW")[rec]
    return (
        f"Exact search takes {ex['ms per query']:.2f} ms per query (best of 3 runs, like every row) and holds the "
        f"whole matrix ({ex['MiB']:,.0f} MiB). **HNSW** keeps every vector plus its links ({h['MiB']:,.0f} MiB); its "
        f"recall grows with efSearch from {hn.iloc[0]:.1%} to {hn.iloc[-1]:.1%}. **IVF-PQ** keeps {pq_m}-byte codes "
        f"instead of the vectors: {q['MiB']:,.0f} MiB, {ex['MiB'] / q['MiB']:.0f}× less than the matrix; from its "
        f"narrowest to its widest search its recall moves from {q0[rec]:.1%} to {q[rec]:.1%}"
        + (": its codes are approximations, and more clusters cannot make them exact. " if q[rec] - q0[rec] < 0.05
           else ". ")
        + f"Re-scoring its best {rerank * k} candidates with the exact vectors needs those vectors again "
        f"({r['MiB']:,.0f} MiB here).\n\n"
        f"**In this run**, at each one's best recall: {describe(h)}; {describe(r)}. {index_verdict(h, r, k)}. At "
        f"matched recall, the fastest {hi['index']} setting that finds at least {lo['index']}'s best {lo[rec]:.1%} is "
        f"{match['setting']} ({match[rec]:.1%} in {match['ms per query']:.3f} ms): {pace} than {lo['index']} at "
        f"{lo['setting']}.")


NAMING_COLUMNS = ("(a) free generation", "(b) constrained choice", "(c) embedding")


def _naming_frame(correct: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(correct, pd.DataFrame) or not set(NAMING_COLUMNS) <= set(correct.columns) or correct.empty:
        raise ValueError(f"correct must be a non-empty DataFrame of True/False with columns {list(NAMING_COLUMNS)} "
                         "(one row per interest: was it named right?)")
    return correct[list(NAMING_COLUMNS)].astype(float)


def naming_verdict(correct: pd.DataFrame, n_boot: int = 1000, seed: int = C.SEED) -> str:
    """Did the LLM beat a plain sentence encoder at naming interests? Embedding − constrained choice, paired over the
    same interests: better only when the interval lies above 0, else "too few to call"."""
    from .evaluate import paired_ci

    c = _naming_frame(correct)
    acc = c.mean()
    emb, llm_best = acc["(c) embedding"], max(acc["(a) free generation"], acc["(b) constrained choice"])
    d, lo, hi = paired_ci(c["(c) embedding"].to_numpy(), c["(b) constrained choice"].to_numpy(), n_boot=n_boot,
                          seed=seed)
    n = len(c)
    differ = int((c["(c) embedding"] != c["(b) constrained choice"]).sum())
    head = ("The LLM did **not** beat the embedding baseline" if emb > llm_best else
            "The LLM only tied the embedding baseline" if emb == llm_best else "The LLM beat the embedding baseline")
    verdict = paired_verdict(lo, hi)
    return (head + f": embedding naming got {emb:.0%} of the interests right, constrained choice "
            f"{acc['(b) constrained choice']:.0%}, free generation {acc['(a) free generation']:.0%}. The paired "
            f"interval of embedding − constrained choice, [{_fmt(lo, 2)}, {_fmt(hi, 2)}], "
            + {"above": f"lies above 0: the embedding is clearly better on these {n} interests.",
               "below": f"lies below 0: constrained choice is clearly better on these {n} interests.",
               "tied": f"includes 0{' (its lower end)' if lo == 0 else ''}: the two differ on {differ} of {n} "
                       "interests, too few to call the gap more than chance.",
               "untested": "cannot be computed (too few interests)."}[verdict])


def naming_reading(correct: pd.DataFrame, off_format: int, n_boot: int = 1000, seed: int = C.SEED) -> str:
    """08's paragraph on naming: the two paired differences, the off-format free names, and :func:`naming_verdict`."""
    from .evaluate import paired_ci

    c = _naming_frame(correct)
    d_bc = paired_ci(c["(c) embedding"].to_numpy(), c["(b) constrained choice"].to_numpy(), n_boot=n_boot, seed=seed)
    d_ab = paired_ci(c["(b) constrained choice"].to_numpy(), c["(a) free generation"].to_numpy(), n_boot=n_boot,
                     seed=seed)
    return (f"On {len(c)} interests: embedding − constrained choice {_fmt(d_bc[0], 2)} [{_fmt(d_bc[1], 2)}, "
            f"{_fmt(d_bc[2], 2)}], constrained choice − free generation {_fmt(d_ab[0], 2)} [{_fmt(d_ab[1], 2)}, "
            f"{_fmt(d_ab[2], 2)}] (paired, share correct). {off_format} free names were off-format; constrained "
            "choice cannot be, by construction: it only ever picks one of the labels. A plain sentence encoder, "
            "which never generates anything, is the yardstick a generative model has to beat here. "
            + naming_verdict(correct, n_boot, seed))


def naming_figure_reading(full_naming: dict | None, n_this_run: int) -> str:
    """The sentence under 08's naming figure: the full run's best namer and whether its Wilson interval lies above
    the others' (``full_naming``: method -> {"accuracy", "lo", "hi", "interests"}; None: this run only)."""
    if not full_naming:
        return (f"*Reading the figure.* Only this run's {n_this_run} interests are shown: their intervals are wide, "
                "so overlapping bars are not told apart.")
    best = max(full_naming, key=lambda m: full_naming[m]["accuracy"])
    others = [m for m in full_naming if m != best]
    apart = all(full_naming[best]["lo"] > full_naming[m]["hi"] for m in others)
    b = full_naming[best]
    return (f"*Reading the figure.* On all {b['interests']} interests of the full run, **{best}** names the most right "
            f"({b['accuracy']:.0%}, interval [{b['lo']:.0%}, {b['hi']:.0%}]); "
            + ", ".join(f"{m} {full_naming[m]['accuracy']:.0%}" for m in others)
            + (". Its interval lies above the others': the ranking is not chance." if apart else
               ". Some intervals overlap: those methods are not told apart.")
            + f" This run's {n_this_run} interests give wide intervals; read the full bars.")


def profiler_reading(prof: pd.DataFrame, ndcg_by_query: dict, n_users: int, fell_back: int, fact_free: int,
                     k: int) -> str:
    """08's reading of the LLM-as-profiler comparison. ``prof``: rows query, score, lo (paired against the history
    mean); ``ndcg_by_query``: query -> per-user NDCG values; the counts of summaries that fell back to the template
    (and of those, the fact-free ones)."""
    best = prof[prof["lo"] > 0]
    hitless = [name for name, v in ndcg_by_query.items() if len(pd.Series(v).dropna())
               and (pd.Series(v).dropna() == 0).all()]
    out = ("Clearly better than the history mean (paired interval above 0): "
           + "; ".join(f"{r['query']} on {r['score']}" for _, r in best.iterrows()) + ". " if len(best) else
           "No summary query is clearly better than the history mean here (no paired interval lies entirely above "
           "0). ")
    if hitless:
        out += (f"No tail user got a test hit in the top {k} from the {' and '.join(hitless)} "
                f"quer{'y' if len(hitless) == 1 else 'ies'} (NDCG 0 for every user): on NDCG it found nothing to "
                "compare, and two such queries would tie at [0, 0] by construction. ")
    return (out + f"{fell_back} of {n_users} LLM summaries fell back to the template ({fact_free} of them fact-free); "
            f"with {n_users} users, read the intervals, not the means.")


def segment_reading(summary: pd.DataFrame) -> str:
    """Which activity segment's tiers match the truth best (``recovery(...)["summary"]``: rows per segment, columns
    "core found as core" and "|found − true| interests"), and which worst."""
    need = {"core found as core", "|found − true| interests"}
    if not isinstance(summary, pd.DataFrame) or not need <= set(summary.columns):
        raise ValueError(f"summary must be recovery(...)['summary'] with columns {sorted(need)}")
    seg = summary.drop(index="all", errors="ignore").dropna(subset=list(need))
    if len(seg) < 2:
        return "Only one segment of users here: nothing to compare."
    core = seg["core found as core"]
    gap = seg["|found − true| interests"]
    best, worst = core.idxmax(), core.idxmin()
    same = gap.idxmin() == best
    return (f"**Reading it.** Core found as core is highest for **{best}** users ({core[best]:.2f}) and lowest for "
            f"**{worst}** users ({core[worst]:.2f}); the number of interests is closest to the truth for {gap.idxmin()} "
            f"users (|found − true| {gap.min():.2f})" + (", the same segment." if same else ".")
            + " A short history often holds no event at all from a true interest, and an emerging or fading one "
            "rarely leaves two: the ceiling table above measures how often.")
