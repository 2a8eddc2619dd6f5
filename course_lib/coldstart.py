"""Serving users and items with no history: self-descriptions, popularity fallbacks, content for new items.

Not a new model: cold start reuses the encoders, profiles and rankers; this module decides what to use when
history is missing, and measures how quality grows as a new user's first interactions arrive. The blend of
history and description that :func:`new_user_curve` measures is also a recommender, :class:`Blend`, so
``evaluate`` and the report can score it like any other method.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import Content
from .checks import number
from .metrics import ndcg_at_k, precision_at_k, recall_at_k
from .profiles import blend_profiles, history_profiles
from .rank import above_threshold, tie_order, top_k, top_k_scores
from .vectors import unit_rows


class Blend(Content):
    """The cold-start blend as a recommender: profile = w · history + (1 − w) · description with w = n / (n + blend_k),
    n = the user's training interactions (``profiles.blend_profiles``), scored by cosine with every item. As in
    ``Content``, item vectors are normalised first (the encoders' already are), so the history part is the mean of
    unit vectors: :func:`new_user_curve` on the same unit vectors ranks alike.

    A user with history but no description gets their history profile (what ``Content`` gives them); a new user
    gets ``fallback`` as in ``Content`` (their description, else popularity). Not decomposable: the description's
    part of a score is no history item's term.
    """

    name = "blend"
    decomposable = False

    def __init__(self, catalogue, item_vecs=None, user_vecs: dict | None = None, blend_k: float = 5.0,
                 half_life_days: float | None = None, fallback="description"):
        super().__init__(catalogue, item_vecs, half_life_days=half_life_days, user_vecs=user_vecs, fallback=fallback)
        self.blend_k = number("blend_k", blend_k, above=0)

    def contributions(self, user, item_row: int):
        raise self._not_decomposable()  # the description's part is no history item's term

    def _score(self, users) -> np.ndarray:
        users = list(users)
        hist, _ = history_profiles(self.train_, self.catalogue, users=users, half_life_days=self.half_life_days)
        prof = unit_rows(hist)
        described = [k for k, u in enumerate(users) if u in self.user_vecs]
        if described:
            n = self.train_[C.USER].value_counts().reindex([users[k] for k in described]).to_numpy()
            desc = np.stack([np.asarray(self.user_vecs[users[k]], dtype=np.float32) for k in described])
            prof[described] = blend_profiles(hist[described], desc, n, self.blend_k)
        return (unit_rows(prof) @ self.item_vecs.T).astype(np.float32)


def threshold_counts(user_vecs, item_vecs, threshold: float = 0.5) -> pd.Series:
    """How many items the article's ``sim >= threshold`` recipe returns for each user (0 = an empty page)."""
    return pd.Series([len(x) for x in above_threshold(user_vecs, item_vecs, threshold)], name=f"items with cos >= {threshold}")


def new_user_curve(interactions: pd.DataFrame, catalogue, description_vecs: dict, ns=(0, 1, 3, 5, 10),
                   k: int = 10, min_history: int = 20, blend_k: float = 5.0, per_user: bool = False):
    """Quality for a new user after their first ``n`` interactions, for each ``n`` in ``ns``.

    Users with a description and at least ``min_history`` interactions play "new user": only their first ``n``
    interactions are known. Every ``n`` is scored on the same relevant items: the later items (after the first
    ``max(ns)``) that are *not* among those first ``max(ns)`` (the discovery task). Counting a repeat of an early item
    as relevant while hiding it from the list would make every method dip as ``n`` grows: the masked-repeats mistake.
    Popularity is counted on all *other* users. Methods: popularity, description only, history only (n > 0),
    and the blend ``n / (n + blend_k)`` history + the rest description.
    ``per_user=True`` also returns one row per (n, method, user), for paired comparisons.
    """
    from .baselines import item_popularity
    from .catalogue import Catalogue
    from .checks import integer, number

    cat = Catalogue.from_items(catalogue)
    item_vecs = cat.require_vectors("new_user_curve")
    k = integer("k", k, min=1)
    min_history = integer("min_history", min_history, min=1)
    blend_k = number("blend_k", blend_k, above=0)
    ns = sorted(set(integer("ns entry", n, min=0) for n in ns))
    if not ns:
        raise ValueError("ns is empty: give the numbers of known interactions to try, e.g. [0, 1, 3]")
    counts = interactions.groupby(C.USER).size()
    users = [u for u in counts[counts >= max(min_history, max(ns) + 1)].index if u in description_vecs]
    if not users:
        raise ValueError(f"no user has a description and at least {max(min_history, max(ns) + 1)} interactions")
    log = interactions[interactions[C.USER].isin(users)].sort_values([C.USER, C.TIMESTAMP], kind="stable")
    log = log.assign(order=log.groupby(C.USER).cumcount(), row=cat.rows(log[C.ITEM]))
    early = log[log["order"] < max(ns)].groupby(C.USER)["row"].agg(set).reindex(users)
    early = [s if isinstance(s, set) else set() for s in early]
    later = log[log["order"] >= max(ns)].groupby(C.USER)["row"].agg(set).reindex(users).tolist()
    rel = [set(t) - e for t, e in zip(later, early)]
    keep = [bool(r) for r in rel]
    users = [u for u, ok in zip(users, keep) if ok]
    rel = [r for r, ok in zip(rel, keep) if ok]
    log = log[log[C.USER].isin(set(users))]
    others = interactions[~interactions[C.USER].isin(set(users))]
    pop = item_popularity(others, cat)
    desc = np.stack([description_vecs[u] for u in users])
    rows, users_rows = [], []
    for n in ns:
        known = log[log["order"] < n]
        seen = known.groupby(C.USER)["row"].agg(list).reindex(users)
        seen = [x if isinstance(x, list) else [] for x in seen]
        lists = {"popularity": top_k_scores(np.tile(pop, (len(users), 1)), k, exclude=seen,
                                            tiebreak=tie_order(pop, cat))[1],
                 "description only": top_k(desc, item_vecs, k, exclude=seen)[1]}
        if n > 0:
            hist, _ = history_profiles(known, cat, users=users)
            lists["history only"] = top_k(hist, item_vecs, k, exclude=seen)[1]
            lists["blend"] = top_k(blend_profiles(hist, desc, np.full(len(users), n), blend_k), item_vecs, k,
                                   exclude=seen)[1]
        else:
            lists["blend"] = lists["description only"]
        for method, idx in lists.items():
            recs = [[int(i) for i in r if i >= 0] for r in idx]
            rec, ndcg = recall_at_k(recs, rel, k), ndcg_at_k(recs, rel, k)
            rows.append({"n": n, "method": method, f"recall@{k}": rec.value, f"ndcg@{k}": ndcg.value,
                         "users": len(users)})
            users_rows.append(pd.DataFrame({"n": n, "method": method, "user": users, f"recall@{k}": rec.per_user,
                                            f"ndcg@{k}": ndcg.per_user}))
    table = pd.DataFrame(rows)
    return (table, pd.concat(users_rows, ignore_index=True)) if per_user else table


def cold_item_table(users: list, spaces: dict, items: pd.DataFrame, cold_items: list,
                    truth: pd.DataFrame, user_truth: pd.DataFrame, k: int = 5, per_user: bool = False):
    """Rank only the cold items for existing users, in each vector space of ``spaces`` (name -> (profiles, items)).

    Scored with the shop's ground truth: an item is relevant when its subcategory is one of the user's true
    interests; "relevant and in the preferred colour" counts only users with a colour preference.
    ``per_user=True`` also returns one row per (space, user) (NaN where a user has nothing relevant), for paired
    comparisons.
    """
    from .catalogue import Catalogue

    cat = Catalogue.from_items(items)
    items = cat.items
    if items is None or C.SUBCATEGORY not in items.columns:
        raise ValueError("cold_item_table needs the item table with subcategory and colour (the shop)")
    cand = cat.rows(cold_items, what="cold_items").tolist()
    sub = items[C.SUBCATEGORY].to_numpy()
    col = items[C.COLOUR].to_numpy()
    interests = truth.groupby(C.USER)[C.INTEREST].agg(set).reindex(users)
    pref = user_truth.set_index(C.USER)["colour_pref"].reindex(users).fillna("").to_numpy()
    rel = [{i for i in cand if sub[i] in s} for s in interests]
    rel_col = [{i for i in r if col[i] == p} if p else set() for r, p in zip(rel, pref)]
    rows, users_rows = [], []
    has, has_col = np.array([bool(r) for r in rel]), np.array([bool(r) for r in rel_col])
    for name, (prof, vecs) in spaces.items():
        _, idx = top_k(prof, vecs, k, candidates=cand)
        recs = [list(r) for r in idx]
        p, nd, pc = precision_at_k(recs, rel, k), ndcg_at_k(recs, rel, k), precision_at_k(recs, rel_col, k)
        rows.append({"space": name, f"precision@{k} (true interest)": p.value, f"ndcg@{k} (true interest)": nd.value,
                     f"precision@{k} (interest + preferred colour)": pc.value,
                     "users (interest)": p.n_users, "users (colour)": pc.n_users})
        col_p = np.full(len(users), np.nan)
        col_p[has_col] = pc.per_user
        int_p = np.full(len(users), np.nan)
        int_p[has] = p.per_user
        users_rows.append(pd.DataFrame({"space": name, "user": users, f"precision@{k} (true interest)": int_p,
                                        f"precision@{k} (interest + preferred colour)": col_p}))
    table = pd.DataFrame(rows).set_index("space")
    return (table, pd.concat(users_rows, ignore_index=True)) if per_user else table


def registration_comparison(ds, split: str = "global", test_frac: float = 0.2, k: int = 10, metric: str = "ndcg",
                            min_users: int = 20, levels=None, item_vecs=None, description_vecs: dict | None = None,
                            n_boot: int | None = None, seed: int = C.SEED, per_user: bool = False):
    """What registration data (注册资料) does for new users, paired against popularity on the same users.

    On ``ds``'s ``split`` (``"global"``: one time cut, so users who arrive after it are new), the test users with no
    training event are ranked by: ``popularity``; ``demographic popularity`` (:class:`~course_lib.demographic.
    DemographicPopularity`: their age band × occupation group, backing off to age band, then popularity, each group
    with at least ``min_users`` training users); ``TF-IDF description`` (:class:`~course_lib.tfidf.TfidfContent`
    reading the users table's description sentence, popularity when it shares no word with the catalogue); and, when
    ``item_vecs`` and ``description_vecs`` (an encoder's item vectors and ``profiles.description_profiles``) are
    given, ``LM description`` (:class:`~course_lib.baselines.Content` on them). Needs the users table's registration
    columns (MovieLens-100k's age and occupation; a dataset without them is refused, naming the column).

    Returns the paired table: per method, its mean ``metric``@k over the new users, popularity's, the difference with
    its paired 95% interval and the verdict, and ``new users served by`` (how many each route served).
    ``per_user=True`` also returns the :class:`~course_lib.evaluate.Evaluation`.
    """
    from .baselines import Popularity
    from .catalogue import Catalogue
    from .checks import boolean, choice
    from .data import Dataset, make_split
    from .demographic import LEVELS, DemographicPopularity
    from .evaluate import N_BOOT, evaluate
    from .metrics import RANKING_METRICS
    from .tfidf import TfidfContent

    if not isinstance(ds, Dataset):
        raise TypeError("ds must be a course_lib Dataset (e.g. load_dataset('movielens-100k')), "
                        f"got {type(ds).__name__}")
    choice("split", split, ("global",))  # a per-user split has no new users to compare on
    choice("metric", metric, tuple(RANKING_METRICS))
    per_user = boolean("per_user", per_user)
    if (item_vecs is None) != (description_vecs is None):
        raise ValueError("give both item_vecs and description_vecs (an encoder's item vectors and "
                         "description_profiles(ds.users, encoder)) for the language-model row, or neither")
    cat = Catalogue.from_items(ds.items)
    methods = {"popularity": Popularity(cat),
               "demographic popularity": DemographicPopularity(cat, ds.users, levels=LEVELS if levels is None
                                                               else levels, min_users=min_users),
               "TF-IDF description": TfidfContent(cat, descriptions=ds.users)}
    if item_vecs is not None:
        methods["LM description"] = Content(cat.with_vectors(item_vecs), user_vecs=description_vecs)
    s = make_split(ds.interactions, split, test_frac)
    new_test = s.test[~s.test[C.USER].isin(set(s.train[C.USER]))]
    if new_test.empty:
        raise ValueError(f"the {split} split (test_frac={test_frac}) has no new users in test: nothing to compare")
    ev = evaluate(methods, s.train, new_test, cat, k, with_auc=False)
    n_boot = N_BOOT if n_boot is None else n_boot
    table = ev.paired_table("popularity", metric, group="new", n_boot=n_boot, seed=seed)
    users = ev.lists["popularity"][0]
    served = {"demographic popularity": ev.models["demographic popularity"].level_of(users),
              "TF-IDF description": ev.models["TF-IDF description"].served_by(users)}
    if "LM description" in methods:
        m = ev.models["LM description"]
        served["LM description"] = pd.Series([m.new_user_source(u) for u in users])
    table["new users served by"] = [", ".join(f"{v}: {n}" for v, n in served[m].value_counts().sort_index().items())
                                    if m in served else "" for m in table.index]
    return (table, ev) if per_user else table
