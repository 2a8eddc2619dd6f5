"""Serving by interest: how many list slots each tier gets, and the merged multi-interest list as a recommender.

Not discovery or tier rules (see ``tiers``) and not judging lists (see ``evaluate`` and ``recovery``).
Each interest retrieves its own nearest items (its centroid is the query, as in PinnerSage / ComiRec); a
``SlotPolicy`` decides how many of the ``k`` places each interest fills, and in which order they interleave.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import constants as C
from .baselines import Recommender, Terms, sum_by_item
from .catalogue import Catalogue, require_catalogue
from .checks import boolean, choice, integer, number, vector
from .tiers import TierConfig, discover, discover_all
from .vectors import unit_rows


@dataclass(frozen=True)
class SlotPolicy:
    """How a list of ``k`` is shared among a user's interests.

    Tier-aware (default): the core gets the most slots; each emerging interest gets exploration slots; fading
    interests' weight decays (0: dropped); peripheral ones get none. ``UNTIERED``: slots in proportion to importance
    share for every interest, tiers ignored (the plain multi-interest baseline). ``secondary_weight`` and
    ``fading_weight`` were chosen on a validation period of the shop (notebook 04, section 5).
    """

    tiered: bool = True  # False: slots ∝ importance share of every interest, whatever its tier
    emerging_slots: int = 3  # exploration slots reserved for each emerging interest (as k allows)
    secondary_weight: float = 0.25  # a secondary interest's importance share counts × this (core: 1)
    fading_weight: float = 0.0  # a fading interest's importance share counts × this (0: dropped; 1: like secondary)
    order: str = "profile"  # "profile": the chosen items ranked by the user's one recency-weighted profile
    #                         (retrieve per interest, rank with one scorer); "interleave": interests take turns

    def __post_init__(self):
        boolean("tiered", self.tiered)
        integer("emerging_slots", self.emerging_slots, min=0)
        number("secondary_weight", self.secondary_weight, min=0, max=1, fix="the core counts 1; 0 gives secondaries no slots")
        number("fading_weight", self.fading_weight, min=0, max=1, fix="0 drops fading interests, 1 treats them as secondary")
        choice("order", self.order, ORDERS)


ORDERS = ("profile", "interleave")
LIST_TOP = 100.0  # MultiInterest's score of the first listed item; the next ones count down by 1 (a rank)
BELOW_LIST = -10.0  # ... and what it adds to the profile cosine of every item left out of the list
UNTIERED = SlotPolicy(tiered=False)  # the untiered multi-interest baseline (same retrieval and order, no tier rules)


def _largest_remainder(weights: np.ndarray, n: int) -> np.ndarray:
    """``n`` slots in proportion to ``weights`` (Hamilton's method); ties go to the earlier interest."""
    slots = np.zeros(len(weights), dtype=int)
    if n <= 0 or weights.sum() <= 0:
        return slots
    raw = weights / weights.sum() * n
    slots = np.floor(raw).astype(int)
    rest = raw - slots
    for i in np.argsort(-rest, kind="stable")[: n - slots.sum()]:
        slots[i] += 1
    return slots


def allocate_slots(shares, tiers, k: int, policy: SlotPolicy = SlotPolicy()) -> np.ndarray:
    """Slots per interest in a list of ``k`` (interests in tier order, as ``discover`` returns them).

    Tier-aware: emerging interests first get ``emerging_slots`` each; the rest is shared by importance share ×
    tier weight (core 1, secondary ``secondary_weight``, emerging 1, fading ``fading_weight``, peripheral 0), by
    largest remainders; then the core takes slots from the largest other interest until it has the most.
    With nothing to weigh (e.g. only one-offs), every interest counts by its share.
    """
    k = integer("k", k, min=1, fix="a list needs at least one slot")
    shares = vector("shares", shares)
    if (shares < 0).any():
        raise ValueError(f"shares must be >= 0, got {shares[shares < 0][0]} at position {int(np.argmax(shares < 0))}; "
                         "they are importance shares of a user's interests")
    tiers = list(tiers)
    if len(shares) != len(tiers):
        raise ValueError(f"shares and tiers must have one entry per interest, got {len(shares)} and {len(tiers)}")
    if not len(tiers):
        return np.zeros(0, dtype=int)
    if not isinstance(policy, SlotPolicy):
        raise TypeError(f"policy must be a SlotPolicy, got {type(policy).__name__}")
    if not policy.tiered:
        return _largest_remainder(shares if shares.sum() > 0 else np.ones(len(shares)), k)
    tier_weight = {"core": 1.0, "secondary": policy.secondary_weight, "emerging": 1.0,
                   "fading": policy.fading_weight, "peripheral": 0.0}
    w = shares * np.array([tier_weight.get(t, 0.0) for t in tiers])
    if w.sum() <= 0:
        w = shares if shares.sum() > 0 else np.ones(len(shares))
    slots = np.zeros(len(tiers), dtype=int)
    for i in [i for i, t in enumerate(tiers) if t == "emerging"]:  # exploration slots first
        slots[i] = min(policy.emerging_slots, k - slots.sum() - (1 if "core" in tiers else 0))
        slots[i] = max(slots[i], 0)
        w[i] = 0.0  # its reserved slots are its share
    slots += _largest_remainder(w, k - slots.sum()) if w.sum() > 0 else _largest_remainder(
        (slots > 0).astype(float), k - slots.sum())
    if "core" in tiers:
        c = tiers.index("core")
        while True:
            others = np.where(np.arange(len(slots)) == c, -1, slots)
            j = int(np.argmax(others))
            if others[j] <= slots[c]:
                break
            slots[j] -= 1
            slots[c] += 1
    return slots


def interleave(slots) -> list[int]:
    """The order in which interests fill the list: position by position, the interest with the largest
    ``slots / (taken + 1)`` (D'Hondt), so the biggest interest leads and the others are spread through the list."""
    slots = np.asarray(slots, dtype=int)
    taken = np.zeros(len(slots), dtype=int)
    out = []
    for _ in range(int(slots.sum())):
        quota = np.where(taken < slots, slots / (taken + 1), -1.0)
        j = int(np.argmax(quota))
        out.append(j)
        taken[j] += 1
    return out


def multi_interest_lists(tiered: dict, users, catalogue: Catalogue, k: int, seen: list | None = None,
                         policy: SlotPolicy = SlotPolicy(), order_by: np.ndarray | None = None) -> np.ndarray:
    """Top-``k`` item rows per user: each interest's nearest items (its centroid as the query), chosen by the slots
    of ``policy`` in :func:`interleave` order, then ranked by ``order_by`` (one score row per user, e.g. the cosine
    with the user's profile) when given and the policy's order is ``"profile"``.

    Items already chosen and ``seen`` items are skipped; when an interest runs out, the other interests fill its
    places (those with slots first, in tier order). Users without interests get ``-1`` rows (the caller falls back to another method).
    """
    from .rank import ExactIndex

    catalogue = require_catalogue(catalogue, "multi_interest_lists")
    k = integer("k", k, min=1, max=len(catalogue.ids), fix="a list holds each item of the catalogue at most once")
    users = list(users)
    vecs = catalogue.require_vectors("multi_interest_lists")
    out = np.full((len(users), k), -1, dtype=np.int64)
    owners, queries, hidden = [], [], []
    for r, u in enumerate(users):
        ui = tiered.get(u)
        for j, it in enumerate(ui.interests if ui is not None else []):
            owners.append((r, j))
            queries.append(it.centroid)
            hidden.append(list(seen[r]) if seen is not None else [])
    if not queries:
        return out
    depth = min(len(vecs), 2 * k + max((len(h) for h in hidden), default=0))
    _, cand = ExactIndex(vecs).search(np.stack(queries), depth, exclude=hidden)
    per_user: dict = {}
    for q, (r, j) in enumerate(owners):
        per_user.setdefault(r, []).append(cand[q])
    for r, lists in per_user.items():
        ints = tiered[users[r]].interests
        slots = allocate_slots([it.share for it in ints], [it.tier for it in ints], k, policy)
        chosen: list = []
        ptr = [0] * len(ints)

        def take(j):
            while ptr[j] < len(lists[j]):
                i = int(lists[j][ptr[j]])
                ptr[j] += 1
                if i >= 0 and i not in chosen:
                    chosen.append(i)
                    return True
            return False

        spare = [j for j in range(len(ints)) if slots[j] > 0] + [j for j in range(len(ints)) if slots[j] == 0]
        for j in interleave(slots):
            if not take(j):  # this interest ran out: the others fill its place, those with slots first
                any(take(jj) for jj in spare if jj != j)
        chosen = chosen[:k]
        if order_by is not None and policy.order == "profile":
            chosen = sorted(chosen, key=lambda i: -order_by[r, i])
        out[r, : len(chosen)] = chosen
    return out


class MultiInterest(Recommender):
    """A recommender (the ``baselines`` protocol) that serves each user's interests by a :class:`SlotPolicy`.

    ``policy=SlotPolicy()`` is tier-aware; ``policy=UNTIERED`` gives slots by importance share alone. New users:
    ``fallback``, ``"popularity"`` or another recommender fitted with this one (e.g. a ``Content`` that reads
    self-descriptions).

    **Its score is a rank, not a similarity** (``ordinal_score = True``). For a returning user, the ``k`` items of
    the merged list score ``LIST_TOP - position`` (100, 99, ..., in list order); every other item scores its cosine
    with the user's one recency-weighted profile plus ``BELOW_LIST`` (-10), so it ranks below the list and AUC still
    sees a full ranking. Only the order means anything. No real similarity can give this order, which is why the
    score is not one: the list takes each interest's nearest items *up to its slots*, so an item left out (the
    core's next-nearest, say) can be closer to the profile **and** to its own interest's centroid than an item an
    emerging interest was given a slot for (``tests/test_serving.py`` shows such a pair on a five-event story);
    any cosine-based score would rank the left-out item first and change the list. Per-interest thresholds could
    separate the list from the rest, but not also give the list's order (profile cosine, or the interleave's
    turns). So :class:`~course_lib.baselines.Hybrid` refuses a MultiInterest part (a z-scored rank would blend
    nothing real), and :meth:`contributions` explains the cosine with the item's nearest interest, not this score.
    """

    name = "multi-interest"
    fallbacks = ("popularity", None, "recommender")
    ordinal_score = True  # score() is a list rank (LIST_TOP - position above, profile cosine + BELOW_LIST below)
    decomposable = True  # the cosine with the interest that retrieved the item (not the slot score): see contributions

    def __init__(self, catalogue, item_vecs=None, cfg: TierConfig = TierConfig(), k: int = 10,
                 policy: SlotPolicy = SlotPolicy(), descriptions: dict | None = None, fallback="popularity"):
        cat = Catalogue.from_items(catalogue, item_vecs)
        cat = cat.with_vectors(unit_rows(cat.require_vectors("MultiInterest")))
        self.fallback_model = fallback if isinstance(fallback, Recommender) else None
        super().__init__(cat, "recommender" if self.fallback_model is not None else fallback)
        if not isinstance(cfg, TierConfig):
            raise TypeError(f"cfg must be a TierConfig, got {type(cfg).__name__}")
        if not isinstance(policy, SlotPolicy):
            raise TypeError(f"policy must be a SlotPolicy (or serving.UNTIERED), got {type(policy).__name__}")
        self.cfg, self.policy = cfg, policy
        self.k = integer("k", k, min=1, max=len(cat.ids), fix=f"the length of each merged list, at most the "
                         f"catalogue's {len(cat.ids)} items (e.g. 10)")
        self.descriptions = dict(descriptions or {})

    def get_params(self, deep: bool = False) -> dict:
        params = {**super().get_params(False), "item_vecs": None}  # the catalogue holds the (unit) vectors
        if self.fallback_model is not None:
            params["fallback"] = self.fallback_model
        if deep and self.fallback_model is not None:
            params.update({f"fallback__{k}": v for k, v in self.fallback_model.get_params(deep=True).items()})
        return params

    @property
    def fallback_label(self) -> str:
        if self.fallback_model is not None:
            return f"{self.fallback_model.name} ({self.fallback_model.fallback_label})"
        return super().fallback_label

    def _fit(self, train: pd.DataFrame):
        self.train_ = train
        self.tiered_ = discover_all(train, self.catalogue, self.cfg, descriptions=self.descriptions)
        if self.fallback_model is not None:
            self.fallback_model.fit(train)

    def _score_new(self, users) -> np.ndarray:
        if self.fallback_model is not None:
            return self.fallback_model.score(users)
        return super()._score_new(users)

    def _score(self, users) -> np.ndarray:
        return self._score_from(self.train_, self.tiered_, list(users))

    def _score_from(self, train: pd.DataFrame, tiered: dict, users: list) -> np.ndarray:
        """Scores of ``users`` from this training log and these interests (the fitted ones, or a modified history's)."""
        from .profiles import history_profiles, seen_items

        prof, _ = history_profiles(train, self.catalogue, users=users, half_life_days=self.cfg.half_life_days)
        s = unit_rows(prof) @ self.catalogue.vectors.T + BELOW_LIST  # in [-11, -9]: below every listed item
        lists = multi_interest_lists(tiered, users, self.catalogue, self.k,
                                     seen_items(train, self.catalogue, users), self.policy, order_by=s)
        for r, row in enumerate(lists):
            valid = row[row >= 0]
            s[r, valid] = LIST_TOP - np.arange(len(valid))  # the list in its order: a rank, not a similarity
        return s.astype(np.float32)

    def contributions(self, user, item_row: int) -> Terms:
        """The interest whose centroid is nearest the item, and within it the terms (v_j · v_i) / (n ‖c‖) of the
        cosine between the item and the interest's centroid (the model itself ranks by slot, not by this cosine)."""
        self._check_fitted()
        ints = list(self.tiered_[user].interests)
        v = self.catalogue.vectors
        owner = ints[int(np.argmax(np.stack([it.centroid for it in ints]) @ v[item_row]))]
        rows = np.asarray(owner.items)
        norm = max(float(np.linalg.norm(v[rows].mean(0))), 1e-12)
        rows, values = sum_by_item(rows, (v[rows] @ v[item_row]) / (len(rows) * norm))
        return Terms(rows, values, float(values.sum()), interest=owner,
                     note="the score is the cosine with the {interest} interest's centroid, which the terms "
                          "decompose; the model ranks by slot (its own score {score:g})")

    def _score_history(self, user, history: pd.DataFrame) -> np.ndarray:
        """Interests rediscovered from ``history``, then scored like the fitted ones (the model is not touched)."""
        now = self.train_[C.TIMESTAMP].max()
        tiered = {user: discover(history, self.catalogue, self.cfg, now=now, user=user,
                                 description=self.descriptions.get(user))}
        train = pd.concat([self.train_[self.train_[C.USER] != user], history])
        return self._score_from(train, tiered, [user])[0]
