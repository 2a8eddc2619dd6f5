"""Figures for the notebooks: each function makes its own ``fig, ax`` and returns the figure.

Not analysis: functions here only draw what they are given; numbers come from the stage modules.
"""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import checks
from . import constants as C


def _dataset(ds):
    from .data import Dataset

    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a course_lib.data.Dataset (e.g. load_dataset('shop')), got {type(ds).__name__}")
    return ds


def _user(ds, user_id):
    if user_id not in set(ds.users[C.USER]):
        raise ValueError(f"user_id {user_id!r} is not a user of dataset {ds.name!r}; pick one from ds.users.user_id")
    return user_id


def _column_names(name: str, value) -> list[str]:
    if isinstance(value, str):
        raise TypeError(f"{name} must be a list of column names, got one string {value!r}; use [{value!r}]")
    return checks.sequence(name, value, allow_empty=False, what="column names")


def plot_long_tail(ds):
    """Interactions per user and per item, sorted, on a log scale: the long tails of a real shop."""
    _dataset(ds)
    per_user = ds.interactions.groupby(C.USER).size().reindex(ds.users[C.USER], fill_value=0)
    per_item = ds.interactions.groupby(C.ITEM).size().reindex(ds.items[C.ITEM], fill_value=0)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), dpi=80)
    for ax, counts, what in ((axes[0], per_user, "users"), (axes[1], per_item, "items")):
        v = np.sort(counts.to_numpy())[::-1]
        ax.plot(np.arange(1, len(v) + 1), np.maximum(v, 0.8), lw=2)
        ax.set_yscale("log")
        ax.set_xlabel(f"{what}, most active first")
        ax.set_ylabel("interactions (log)")
        zero = int((v == 0).sum())
        ax.set_title(f"{what}: median {np.median(v):.0f}, max {v.max()}, {zero} with none")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_category_mix(ds):
    """Share of items and of interactions per category, side by side."""
    _dataset(ds)
    items = ds.items[C.CATEGORY].value_counts(normalize=True)
    cat_of = ds.items.set_index(C.ITEM)[C.CATEGORY]
    inter = ds.interactions[C.ITEM].map(cat_of).value_counts(normalize=True)
    df = pd.DataFrame({"items": items, "interactions": inter}).fillna(0).sort_values("items")
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(df) + 1.2), dpi=80)
    y = np.arange(len(df))
    ax.barh(y - 0.2, df["items"], height=0.4, label="share of items")
    ax.barh(y + 0.2, df["interactions"], height=0.4, label="share of interactions")
    ax.set_yticks(y, df.index)
    ax.set_xlabel("share")
    ax.legend(loc="lower right")
    ax.set_title("Category mix")
    fig.tight_layout()
    return fig


def show_items(ds, item_ids, ncols: int = 4, width: int = 34, scores=None):
    """A grid of item images with their title and wrapped description (text only when there are no images)."""
    _dataset(ds)
    item_ids = checks.known("item_ids", item_ids, set(ds.items[C.ITEM]), what="item id",
                            fix=f"they must be item_id values of dataset {ds.name!r}")
    ncols = checks.integer("ncols", ncols, min=1, max=12)
    width = checks.integer("width", width, min=10, fix="characters per line of the description")
    if scores is not None:
        scores = checks.vector("scores", scores, length=len(item_ids))
    nrows = max(1, int(np.ceil(len(item_ids) / ncols)))
    lookup = ds.items.set_index(C.ITEM)
    bodies = [textwrap.fill(str(lookup.loc[i, C.DESCRIPTION]), width) for i in item_ids]  # the whole description:
    lines = max((b.count("\n") + 1 for b in bodies), default=1)                        # colour words included
    text_h = 0.19 * lines + 0.3  # inches of text under each picture, at a readable 9 pt
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.9 * ncols, (2.4 + text_h) * nrows), dpi=90, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (ax, item_id) in enumerate(zip(axes.ravel(), item_ids)):
        row = lookup.loc[item_id]
        head = f"{row[C.TITLE]}" + (f"  ({scores[k]:.2f})" if scores is not None else "")
        if ds.has_images:
            ax.imshow(np.asarray(ds.image(item_id)))
            ax.set_title(head, fontsize=10, fontweight="bold", loc="left")
            ax.text(0, -0.03, bodies[k], transform=ax.transAxes, fontsize=9, va="top", ha="left")
        else:
            ax.text(0, 1, head + "\n" + bodies[k], fontsize=9, va="top")
    fig.tight_layout()
    return fig


def plot_user_timeline(ds, user_id, color_by: str = C.CATEGORY, labels: pd.Series | None = None):
    """One user's interactions over time, one row per ``color_by`` value (or per given ``labels``)."""
    _user(_dataset(ds), user_id)
    if color_by not in ds.items.columns or color_by == C.ITEM:
        raise ValueError(f"color_by must be a column of ds.items, got {color_by!r}; "
                         f"choose from {[c for c in ds.items.columns if c != C.ITEM]}")
    hist = ds.interactions[ds.interactions[C.USER] == user_id]
    if hist.empty:
        raise ValueError(f"user {user_id!r} has no interactions; pick a warm user (ds.interactions.user_id)")
    if labels is not None:
        labels = pd.Series(checks.sequence("labels", labels, what="labels"))
        if len(labels) != len(hist):
            raise ValueError(f"labels must have one entry per interaction of user {user_id!r} ({len(hist)}), "
                             f"got {len(labels)}")
    hist = hist.merge(ds.items[[C.ITEM, color_by]], on=C.ITEM, how="left").sort_values(C.TIMESTAMP)
    groups = labels.to_numpy() if labels is not None else hist[color_by].to_numpy()
    names = list(pd.unique(groups))
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(names) + 1.4), dpi=80)
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    sizes = 12 * hist[C.WEIGHT].to_numpy() if C.WEIGHT in hist else 20
    for i, name in enumerate(names):
        sel = groups == name
        ax.scatter(hist[C.TIMESTAMP].to_numpy()[sel], np.full(sel.sum(), i), s=np.asarray(sizes)[sel] if np.ndim(sizes) else sizes,
                   color=cmap(i % cmap.N), alpha=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.set_title(f"user {user_id}: {len(hist)} interactions (dot size = event weight)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_cosine_hist(pairs: pd.DataFrame, threshold: float | None = 0.5, by: str = "embedding"):
    """Histograms of pair cosines, one panel per ``by`` value, same vs different pairs, with a threshold line."""
    checks.frame("pairs", pairs, [by, "cosine", "pair"], allow_empty=False,
                 fix="pass the pairs table of diagnostics.pooling_report")
    if threshold is not None:
        threshold = checks.number("threshold", threshold, min=-1, max=1)
    names = list(pd.unique(pairs[by]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 2.8), dpi=80, sharey=True, squeeze=False)
    bins = np.linspace(-0.3, 1.0, 53)
    for ax, name in zip(axes[0], names):
        sub = pairs[pairs[by] == name]
        for kind, colour in (("different", "tab:blue"), ("same", "tab:orange")):
            ax.hist(sub.loc[sub["pair"] == kind, "cosine"], bins=bins, alpha=0.6, density=True, color=colour,
                    label=f"{kind} group")
        if threshold is not None:
            ax.axvline(threshold, color="k", ls="--", lw=1, label=f"cos = {threshold}")
        ax.set_title(str(name))
        ax.set_xlabel("cosine")
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_sweep(df: pd.DataFrame, x: str, ys: list[str], title: str = ""):
    """Lines of one or more metrics against a swept parameter; the best value of each is marked."""
    ys = _column_names("ys", ys)
    checks.frame("df", df, [x, *ys], allow_empty=False)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
    for y in ys:
        ax.plot(df[x], df[y], marker="o", label=y)
        best = df[y].idxmax()
        ax.scatter([df.loc[best, x]], [df.loc[best, y]], s=120, facecolors="none", edgecolors="k")
    ax.set_xlabel(x)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_metric_bars(table: pd.DataFrame, metric: str, title: str = ""):
    """Horizontal bars of ``metric`` per method with the table's ``[lo, hi]`` interval as error bars."""
    checks.frame("table", table, [metric], allow_empty=False, fix="pass the table of Evaluation.table()")
    t = table.sort_values(metric)
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(t) + 1.2), dpi=80)
    err = None
    if f"{metric} lo" in t:
        err = np.vstack([t[metric] - t[f"{metric} lo"], t[f"{metric} hi"] - t[metric]])
    ax.barh(range(len(t)), t[metric], xerr=err, color="tab:blue", alpha=0.8, capsize=3)
    ax.set_yticks(range(len(t)), t.index)
    ax.set_xlabel(metric + (" (bars: 95% bootstrap interval)" if err is not None else ""))
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_lines(df: pd.DataFrame, x: str, y: str, group: str, title: str = ""):
    """One line per ``group`` value of ``y`` against ``x`` (e.g. quality against a new user's interactions)."""
    checks.frame("df", df, [x, y, group], allow_empty=False)
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
    for name, g in df.groupby(group, sort=False):
        ax.plot(g[x], g[y], marker="o", label=str(name))
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_count_hist(counts: dict, xlabel: str, title: str = ""):
    """Histograms of per-user counts (e.g. items passing a threshold), one panel per entry of ``counts``."""
    counts = {name: checks.vector(f"counts[{name!r}]", c) for name, c in
              checks.mapping("counts", counts, what="name -> per-user counts").items()}
    empty = [name for name, c in counts.items() if len(c) == 0]
    if empty:
        raise ValueError(f"counts[{empty[0]!r}] is empty: there is nothing to draw")
    fig, axes = plt.subplots(1, len(counts), figsize=(3.8 * len(counts), 2.8), dpi=80, squeeze=False)
    for ax, (name, c) in zip(axes[0], counts.items()):
        ax.hist(np.asarray(c), bins=30, color="tab:purple", alpha=0.8)
        ax.set_title(f"{name}: median {np.median(c):.0f}, {np.mean(np.asarray(c) == 0):.0%} get none", fontsize=9)
        ax.set_xlabel(xlabel)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_interest_timeline(ds, user_id, ui, item_index_of: dict | None = None):
    """A user's history, one row per discovered interest, labelled with its name and tier."""
    _user(_dataset(ds), user_id)
    if not hasattr(ui, "interests") or not hasattr(ui, "labels"):
        raise TypeError(f"ui must be the user's tiers.UserInterests (from tiers.discover), got {type(ui).__name__}")
    hist = ds.interactions[ds.interactions[C.USER] == user_id].sort_values(C.TIMESTAMP, kind="stable")
    if hist.empty or not ui.interests:
        raise ValueError(f"user {user_id!r} has no history to draw; pick a warm user")
    if ui.labels is None or len(ui.labels) != len(hist):
        raise ValueError(f"ui has {0 if ui.labels is None else len(ui.labels)} labels but user {user_id!r} has {len(hist)} interactions: "
                         "was ui computed for another user or another log?")
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(ui.interests) + 1.4), dpi=80)
    cmap = plt.get_cmap("tab10")
    ts = hist[C.TIMESTAMP].to_numpy()
    w = hist[C.WEIGHT].to_numpy() if C.WEIGHT in hist else np.ones(len(hist))
    for k, it in enumerate(ui.interests):
        sel = ui.labels == k
        ax.scatter(ts[sel], np.full(sel.sum(), k), s=14 * w[sel], color=cmap(k % 10), alpha=0.85)
    ax.set_yticks(range(len(ui.interests)), [f"{it.name or k} ({it.tier}, {it.share:.0%})" for k, it in enumerate(ui.interests)])
    ax.invert_yaxis()
    ax.set_title(f"user {user_id}: {len(hist)} events in {len(ui.interests)} interests (share = time-decayed importance)")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


PAIRED_COLUMNS = ("group", "a", "b", "diff", "lo", "hi")


def plot_paired_by_group(paired: pd.DataFrame, metric: str = "ndcg", title: str = "", reference: str = "best",
                          group_word: str = " users"):
    """The report's key figure: in each user group, every method's paired difference from that group's best method,
    with its 95% interval (one panel per group, methods in the same rows).

    ``paired``: rows of ``evaluate.paired_to_dict`` (only those with ``reference == "best"`` are drawn) or any frame
    with columns group, a (the method), b (the group's best), diff, lo, hi; ``users`` and ``mean_b`` label the panels.
    An interval that covers 0 is drawn orange ("tied with the best"); one below 0 blue; one above 0 green; one of a
    single user (no interval) grey.

    ``reference`` names what ``b`` is ("best" for the report; e.g. "reference" when every method is compared with
    one baseline); ``group_word`` follows each panel's group name (" users"; "" when groups are metrics).
    """
    checks.frame("paired", paired, PAIRED_COLUMNS, allow_empty=False,
                 fix="pass pd.DataFrame(evaluate.paired_to_dict(ev))")
    df = paired[paired["reference"] == "best"] if "reference" in paired else paired
    if df.empty:
        raise ValueError("paired has no rows with reference == 'best'; pass pd.DataFrame(evaluate.paired_to_dict(ev))")
    groups = list(pd.unique(df["group"]))
    bests = df.groupby("group", sort=False)["b"].unique()
    several = {g: list(b) for g, b in bests.items() if len(b) > 1}
    if several:
        g, b = next(iter(several.items()))
        raise ValueError(f"paired must compare every method with one best method per group; group {g!r} has {b}")
    first = df[df["group"] == groups[0]].sort_values("diff", ascending=False)
    order = [first["b"].iloc[0]] + first["a"].tolist()
    order += [m for m in pd.unique(pd.concat([df["a"], df["b"]])) if m not in order]
    row_of = {m: i for i, m in enumerate(order)}
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups) + 1.6, 0.34 * len(order) + 1.6), dpi=80,
                             sharey=True, squeeze=False)
    for ax, group in zip(axes[0], groups):
        g = df[df["group"] == group]
        best = g["b"].iloc[0]
        ax.axvline(0, color="k", lw=0.8)
        ax.scatter([0], [row_of[best]], marker="*", s=160, color="tab:green", zorder=3, label=f"{reference}")
        for _, r in g.iterrows():
            y, lo, hi = row_of[r["a"]], r["lo"], r["hi"]
            if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
                ax.plot([r["diff"]], [y], "o", color="tab:gray")
                continue
            colour = "tab:orange" if lo <= 0 <= hi else "tab:blue" if hi < 0 else "tab:green"
            ax.errorbar([r["diff"]], [y], xerr=[[r["diff"] - lo], [hi - r["diff"]]], fmt="o", color=colour,
                        capsize=3, lw=1.6)
        n = f", {int(g['users'].max())} users" if "users" in g else ""
        level = f" {float(g['mean_b'].iloc[0]):.3f}" if "mean_b" in g and pd.notna(g["mean_b"].iloc[0]) else ""
        ax.set_title(f"{group}{group_word}{n}\n{reference}: {best}{level}", fontsize=9)
        ax.set_xlabel(f"{metric} − {reference}'s (paired 95% interval)", fontsize=8)
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(order)), order)
    axes[0][0].invert_yaxis()
    handles = [plt.Line2D([], [], marker="*", ls="", color="tab:green", markersize=11, label=f"the group's {reference}"),
               plt.Line2D([], [], marker="o", color="tab:orange", label="tied with it (interval covers 0)"),
               plt.Line2D([], [], marker="o", color="tab:blue", label="below it")]
    if (df["lo"].astype(float) > 0).any():
        handles.append(plt.Line2D([], [], marker="o", color="tab:green", label="above it"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_training(history: pd.DataFrame, evals: pd.DataFrame, title: str = "", best_step: int | None = None):
    """A fine-tuning run's two curves on one step axis: the training loss (left axis, a running mean over ~5% of the
    steps) and the validation score (right axis, one point per evaluation; step 0 is the model before training).
    ``history`` and ``evals`` are ``FinetuneResult.history`` and ``.evals``; ``best_step`` is marked if given."""
    checks.frame("history", history, ["step", "loss"], allow_empty=False, fix="pass FinetuneResult.history")
    checks.frame("evals", evals, ["step", "val"], fix="pass FinetuneResult.evals")
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=80)
    window = max(1, len(history) // 20)
    ax.plot(history["step"], history["loss"], color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(history["step"], history["loss"].rolling(window, min_periods=1).mean(), color="tab:blue",
            label=f"training loss (mean of {window} steps)")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (InfoNCE)", color="tab:blue")
    ax.grid(alpha=0.3)
    if len(evals):
        ax2 = ax.twinx()
        ax2.plot(evals["step"], evals["val"], "o-", color="tab:orange", label="validation NDCG@10")
        ax2.set_ylabel("validation NDCG@10", color="tab:orange")
        if best_step is not None:
            ax2.axvline(best_step, color="tab:green", ls="--", lw=1, label=f"kept: step {best_step}")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_projection(points: dict, labels, title: str = ""):
    """Side-by-side 2-D scatter plots, one per entry of ``points`` (name -> (n, 2) coordinates, e.g. a PCA of
    the item vectors before and after fine-tuning), coloured by ``labels`` (n category names)."""
    if not isinstance(points, dict) or not points:
        raise ValueError("points must be a non-empty dict of name -> (n, 2) array")
    labels = np.asarray(labels)
    for name, xy in points.items():
        xy = np.asarray(xy)
        if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) != len(labels):
            raise ValueError(f"points[{name!r}] must have shape ({len(labels)}, 2), got {xy.shape}")
    cats = list(pd.unique(labels))
    cmap = plt.get_cmap("tab20", max(len(cats), 1))
    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points) + 1.8, 4), dpi=80, squeeze=False)
    for ax, (name, xy) in zip(axes[0], points.items()):
        xy = np.asarray(xy)
        for k, cat in enumerate(cats):
            sel = labels == cat
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(k), label=str(cat))
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][-1].legend(fontsize=7, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_rates(df: pd.DataFrame, group: str, series: str | None = None, value: str = "rate", title: str = "",
               xlabel: str = "share", target: float | None = None):
    """Horizontal bars of a proportion per ``group`` (one bar per ``series`` value within each group, when given),
    with the ``lo``/``hi`` columns as the interval, and an optional dashed ``target`` line."""
    checks.frame("df", df, [group, value, "lo", "hi"] + ([series] if series else []), allow_empty=False,
                 fix="one row per bar with the proportion and its interval (lo, hi)")
    groups = list(dict.fromkeys(df[group]))
    kinds = list(dict.fromkeys(df[series])) if series else [None]
    h = 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(groups) * len(kinds) + 1.4), dpi=80)
    for j, s in enumerate(kinds):
        sel = df if s is None else df[df[series] == s]
        pos = [groups.index(g) + (j - (len(kinds) - 1) / 2) * h for g in sel[group]]
        v = sel[value].astype(float).to_numpy()
        err = np.vstack([v - sel["lo"].astype(float).to_numpy(), sel["hi"].astype(float).to_numpy() - v])
        ax.barh(pos, v, height=h * 0.9, xerr=np.clip(err, 0, None), capsize=3, alpha=0.85,
                label=None if s is None else str(s))
    ax.set_yticks(range(len(groups)), groups)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_xlabel(xlabel + " (bars: 95% interval)")
    if target is not None:
        ax.axvline(target, color="grey", ls="--", lw=1)
    if series:  # below the axes: bars start at 0 and may reach 1, so any corner inside would cover one
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.5 / (0.3 * len(groups) * len(kinds) + 1.4)
                                                                        - 0.12), ncol=len(kinds), frameon=False)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig
