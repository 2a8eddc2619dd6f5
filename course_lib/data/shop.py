"""The shop teaching dataset: a seeded generator with known ground truth, and its loader.

Not real data: every user's true interests and tiers, every item's appeal and launch time and every user's sign-up
time are known, so later notebooks can score tiering and cold-start against the truth, and ``oracle_scores`` gives
the generative probabilities themselves (the ceiling every method is measured against). ``verdict_support`` counts
the test users behind each of the course's verdicts. Regenerate with ``python -m course_lib.data --out data/shop``;
the datasheet is ``data/shop/README.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import constants as C
from ..checks import integer, number
from .dataset import Dataset, parse_timestamps
from .io import DataError, check_root, read_table
from .shop_catalogue import (BRANDS, COLOURS, FILLER, GENERIC_COPY, MODEL_WORDS, PATTERNS, RELATED,
                             SUBCATEGORIES, USER_NOISE, VAGUE_USER)
from ..files import atomic_write
from .shop_images import draw_item

FILES = {
    "items": "items.csv",
    "users": "users.csv",
    "interactions": "interactions.csv",
    "truth": "truth_interests.csv",
    "user_truth": "truth_users.csv",
    "item_truth": "truth_items.csv",
}


@dataclass(frozen=True)
class ShopConfig:
    """Knobs of the generator. The committed ``data/shop`` uses the defaults (see the datasheet for each)."""

    seed: int = C.SEED  # everything below is drawn from one numpy Generator seeded here
    n_items: int = 1800  # products, spread unevenly over the subcategories
    n_users: int = 2500  # registered users, including those who never act
    cold_user_frac: float = 0.05  # registered users with a self-description and no interactions at all
    start: str = "2026-04-01"  # first day of the interaction log
    days: int = 182  # about six months
    activity_mu: float = 2.45  # log-normal activity: median ~10 interactions for a user registered all along
    activity_sigma: float = 1.25  # ... and a long tail up to a few hundred
    max_activity: int = 500
    explore_frac: float = 0.1  # interactions outside the user's interests (gifts, curiosity)
    emerging_frac: float = 0.9  # users (registered before the rise) with an interest that appears late
    fading_frac: float = 0.9  # users (registered before the fade) with an interest that declines
    fading_floor: float = 0.3  # a faded interest keeps this share of its early weight (0: it vanishes)
    colour_pref_frac: float = 0.3  # users who favour one colour
    price_pref_frac: float = 0.3  # users who favour budget or premium items
    prelaunched_frac: float = 0.6  # items already on sale before the log starts
    late_launch_frac: float = 0.18  # items launched in the last fifth of the log (the rest launch before that)
    launch_boost: float = 2.0  # novelty: a just-launched item is drawn (1 + boost) times as often as later on
    launch_decay_days: float = 14.0  # ... and the boost decays exponentially with this time constant
    registered_frac: float = 0.5  # users registered before the log starts; the others sign up during it
    describe_frac: float = 0.7  # users whose self-description says something about their taste
    vague_frac: float = 0.12  # users whose self-description says nothing ("I am new to this platform."); rest: empty
    colour_in_text_frac: float = 0.5  # items whose description names their colour
    literal_noun_frac: float = 0.3  # items whose description uses the subcategory's own name
    generic_text_frac: float = 0.04  # items described by marketing copy alone (no product noun)
    borrowed_noun_frac: float = 0.03  # items whose description uses a related subcategory's noun (misleading)
    image_size: int = 64

    def __post_init__(self):
        integer("seed", self.seed, min=0, max=2**32 - 1)
        integer("n_items", self.n_items, min=len(SUBCATEGORIES), fix="at least one item per subcategory")
        integer("n_users", self.n_users, min=1)
        for name in ("cold_user_frac", "explore_frac", "emerging_frac", "fading_frac", "fading_floor",
                     "colour_pref_frac", "price_pref_frac", "late_launch_frac", "registered_frac", "describe_frac",
                     "vague_frac", "colour_in_text_frac", "literal_noun_frac", "generic_text_frac",
                     "borrowed_noun_frac"):
            number(name, getattr(self, name), min=0, max=1, fix="a fraction of items or users")
        number("prelaunched_frac", self.prelaunched_frac, above=0, max=1,
               fix="a fraction above 0: some items must be on sale when the log starts")
        for a, b in (("prelaunched_frac", "late_launch_frac"), ("describe_frac", "vague_frac"),
                     ("generic_text_frac", "borrowed_noun_frac")):
            if getattr(self, a) + getattr(self, b) > 1:
                raise ValueError(f"{a} + {b} must be <= 1 (shares of the same items or users), got "
                                 f"{getattr(self, a)} + {getattr(self, b)}; lower one of them")
        try:
            pd.Timestamp(self.start)
        except (TypeError, ValueError):
            raise ValueError(f"start must be a date like '2026-04-01', got {self.start!r}") from None
        integer("days", self.days, min=1)
        number("activity_mu", self.activity_mu)
        number("activity_sigma", self.activity_sigma, min=0)
        integer("max_activity", self.max_activity, min=1)
        number("launch_boost", self.launch_boost, min=0, fix="0 means no novelty boost, e.g. 2.0")
        number("launch_decay_days", self.launch_decay_days, above=0, fix="days, e.g. 14")
        integer("image_size", self.image_size, min=8, fix="pixels per side, e.g. 64")


# the interest curves over normalised time u in [0, 1] of the log (see _interest_weights)
EMERGING_RISE = (0.6, 0.85)  # an emerging interest is absent before 60% of the log and full from 85%
FADING_FALL = (0.25, 0.45)  # a fading interest is full until 25% of the log and at its floor from 45%
CORE, SECONDARY, EMERGING_PEAK, FADING_START = 1.0, 0.3, 1.6, 1.0  # interest weights at full strength
EMERGING_BY, FADING_BY = 0.4, 0.1  # only users registered by then can have an emerging / a fading interest


# ---------------------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------------------
def _description(rng, cfg: ShopConfig, spec: dict, sub: str, colour: str) -> str:
    """An item's description: templates around a product noun, or (for a few) misleading or noun-free copy."""
    kind = rng.random()
    if kind < cfg.generic_text_frac:  # marketing copy only: the text says nothing about what it is
        parts = list(rng.choice(GENERIC_COPY, size=2, replace=False))
        if rng.random() < cfg.colour_in_text_frac:
            parts.append(f"Available in {colour}.")
        return " ".join(parts)
    if kind < cfg.generic_text_frac + cfg.borrowed_noun_frac:  # a related subcategory's noun: misleading text
        spec = SUBCATEGORIES[RELATED[sub][rng.integers(len(RELATED[sub]))]]
    if rng.random() < cfg.literal_noun_frac:
        noun = rng.choice(spec["literal"])
    else:
        noun = rng.choice(spec["nouns"])
    f1, f2 = rng.choice(spec["features"], size=2, replace=False)
    article = "An" if noun[0].lower() in "aeiou" else "A"
    opener = [
        f"{article} {noun} with {f1} and {f2}.",
        f"This {noun} pairs {f1} with {f2}.",
        f"Meet our {noun}: {f1}, plus {f2}.",
        f"{f1[0].upper() + f1[1:]} and {f2} in one {noun}.",
    ][rng.integers(4)]
    parts = [opener, rng.choice(spec["uses"])]
    if rng.random() < cfg.colour_in_text_frac:
        parts.append([f"Finished in {colour}.", f"Available in {colour}.", f"This one comes in {colour}."][rng.integers(3)])
    if rng.random() < 0.6:
        parts.append(rng.choice(FILLER))
    order = [0] + list(rng.permutation(np.arange(1, len(parts))))
    return " ".join(parts[i] for i in order)


def _items(cfg: ShopConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """``(items, truth_items, images)``: the public table, the hidden appeal and launch time, the pictures."""
    subs = list(SUBCATEGORIES)
    sub_pop = rng.dirichlet(np.full(len(subs), 2.0))  # some subcategories are bigger than others
    counts = np.maximum(8, np.round(sub_pop * cfg.n_items)).astype(int)
    while counts.sum() != cfg.n_items:  # adjust the largest to hit the exact size
        i = int(np.argmax(counts))
        counts[i] += 1 if counts.sum() < cfg.n_items else -1
    rows, images = [], {}
    colours = list(COLOURS)
    k = 0
    for sub, n in zip(subs, counts):
        spec = SUBCATEGORIES[sub]
        cat = spec["category"]
        for _ in range(n):
            k += 1
            item_id = f"i{k:04d}"
            brand = rng.choice(BRANDS[cat])
            colour = colours[rng.integers(len(colours))]
            pattern = PATTERNS[rng.integers(len(PATTERNS))]
            price = float(np.round(spec["price"] * rng.lognormal(0, 0.35), 2))
            title = f"{brand} {rng.choice(MODEL_WORDS)} {rng.integers(1, 10)}"
            description = _description(rng, cfg, spec, sub, colour)
            images[item_id] = draw_item(spec["shape"], COLOURS[colour], pattern, rng, cfg.image_size)
            rows.append({
                C.ITEM: item_id, C.TITLE: title, C.CATEGORY: cat, C.SUBCATEGORY: sub, C.BRAND: brand,
                C.COLOUR: colour, "pattern": pattern, C.PRICE: price, C.DESCRIPTION: description,
                C.IMAGE: f"images/{item_id}.png",
            })
    items = pd.DataFrame(rows)
    n = len(items)
    appeal = np.round(rng.lognormal(0, 1.1, size=n), 6)  # latent appeal, long-tailed
    r = rng.random(n)
    launch_u = np.where(r < cfg.prelaunched_frac, -rng.uniform(0, 2, n),  # on sale up to a year before the log
                        np.where(r < cfg.prelaunched_frac + cfg.late_launch_frac, rng.uniform(0.8, 1, n),
                                 rng.uniform(0, 0.8, n)))
    start = pd.Timestamp(cfg.start)
    launch = [(start + pd.Timedelta(seconds=int(np.floor(x * cfg.days * 86400)))).isoformat() for x in launch_u]
    truth_items = pd.DataFrame({C.ITEM: items[C.ITEM], "appeal": appeal, "launch": launch})
    return items, truth_items, images


def _normalised_time(ts, cfg: ShopConfig) -> np.ndarray:
    """Timestamps as the generator's time ``u``: 0 at ``cfg.start``, 1 after ``cfg.days`` days."""
    t = pd.to_datetime(pd.Series(np.atleast_1d(ts)))
    return ((t - pd.Timestamp(cfg.start)).dt.total_seconds() / (cfg.days * 86400)).to_numpy(dtype=float)


def _catalogue_arrays(items: pd.DataFrame, truth_items: pd.DataFrame, cfg: ShopConfig) -> dict:
    """What the generative process reads of each item, as arrays in ``items`` order."""
    t = truth_items.set_index(C.ITEM).reindex(items[C.ITEM])
    if t["appeal"].isna().any():
        missing = t.index[t["appeal"].isna()][:3].tolist()
        raise ValueError(f"truth_items has no appeal for items {missing}; regenerate the shop")
    sub = items[C.SUBCATEGORY].to_numpy()
    price = items[C.PRICE].to_numpy(dtype=float)
    median = items.groupby(C.SUBCATEGORY)[C.PRICE].transform("median").to_numpy(dtype=float)
    return {"appeal": t["appeal"].to_numpy(dtype=float), "launch_u": _normalised_time(t["launch"], cfg),
            "colour": items[C.COLOUR].to_numpy(), "cheap": price <= median,
            "by_sub": {s: np.flatnonzero(sub == s) for s in pd.unique(sub)}}


def _pick_interests(rng, subs, sub_weight):
    core = subs[rng.choice(len(subs), p=sub_weight)]
    chosen = [core]
    n_sec = 1 + int(rng.random() < 0.5)
    secondary = []
    for _ in range(n_sec):
        pool = [s for s in RELATED[core] if s not in chosen] if rng.random() < 0.5 else []
        if not pool:
            pool = [s for s in subs if s not in chosen]
        s = pool[rng.integers(len(pool))]
        secondary.append(s)
        chosen.append(s)
    rest = [s for s in subs if s not in chosen]
    emerging = rest.pop(rng.integers(len(rest)))
    fading = rest.pop(rng.integers(len(rest)))
    return core, secondary, emerging, fading


def _interest_weights(u: np.ndarray, tiers: dict, fading_floor: float) -> dict:
    """Unnormalised weight of each interest at normalised time ``u`` in [0, 1] (the generative process)."""
    w = {tiers["core"]: np.full_like(u, CORE)}
    for s in tiers["secondary"]:
        w[s] = np.full_like(u, SECONDARY)
    if tiers.get("emerging"):
        a, b = EMERGING_RISE
        w[tiers["emerging"]] = np.clip((u - a) / (b - a), 0, 1) * EMERGING_PEAK
    if tiers.get("fading"):
        a, b = FADING_FALL
        w[tiers["fading"]] = FADING_START * (fading_floor + (1 - fading_floor) * np.clip((b - u) / (b - a), 0, 1))
    return w


def _launch_factor(u: np.ndarray, launch_u: np.ndarray, cfg: ShopConfig) -> np.ndarray:
    """``(len(u), items)``: 0 before an item's launch, then ``1 + boost · exp(−days since launch / decay)``."""
    days = (np.asarray(u, dtype=float)[:, None] - launch_u[None, :]) * cfg.days
    return np.where(days >= 0, 1 + cfg.launch_boost * np.exp(-np.maximum(days, 0) / cfg.launch_decay_days), 0.0)


def _item_distribution(u: np.ndarray, user: dict, arrays: dict, cfg: ShopConfig) -> np.ndarray:
    """``(len(u), items)``: the probability that the user's event at time ``u`` picks each item.

    With probability ``explore_frac`` the item is drawn by appeal × launch factor over the whole catalogue; otherwise
    an interest is drawn by its weight at ``u`` and the item within it by appeal × colour × price preference × launch
    factor. An interest with no launched item yet passes its weight to the others (to exploration if none is left).
    """
    base = arrays["appeal"][None, :] * _launch_factor(u, arrays["launch_u"], cfg)
    total = base.sum(axis=1, keepdims=True)
    explore = base / np.where(total > 0, total, 1)
    pref = np.ones(len(arrays["appeal"]))
    if user["colour_pref"]:
        pref *= np.where(arrays["colour"] == user["colour_pref"], 4.0, 1.0)
    if user["price_pref"]:
        pref *= np.where(arrays["cheap"] == (user["price_pref"] == "budget"), 3.0, 1.0)
    liked = base * pref[None, :]
    inside = np.zeros_like(base)
    weight_sum = np.zeros(len(base))
    for s, w in _interest_weights(np.asarray(u, dtype=float), user["tiers"], cfg.fading_floor).items():
        cols = arrays["by_sub"].get(s, np.array([], dtype=int))
        mass = liked[:, cols].sum(axis=1)
        w = np.where(mass > 0, w, 0.0)
        inside[:, cols] += w[:, None] * liked[:, cols] / np.where(mass > 0, mass, 1)[:, None]
        weight_sum += w
    inside /= np.where(weight_sum > 0, weight_sum, 1)[:, None]
    e = np.where(weight_sum > 0, cfg.explore_frac, 1.0)[:, None]
    return e * explore + (1 - e) * inside


def _describe(rng, tiers, colour_pref, noise_ok=True) -> str:
    like = lambda s: rng.choice(SUBCATEGORIES[s]["likes"])  # noqa: E731
    bits = []
    if rng.random() < 0.85 or not tiers["secondary"]:
        a = like(tiers["core"])
        if tiers["secondary"] and rng.random() < 0.5:
            b = like(tiers["secondary"][0])
            bits.append([f"I like {a} and {b}.", f"Big fan of {a}; also into {b}.",
                         f"Mostly here for {a}, sometimes {b}."][rng.integers(3)])
        else:
            bits.append([f"I like {a}.", f"Mostly shopping for {a}.", f"Always looking at {a}.",
                         f"{a[0].upper() + a[1:]} are my thing." if a.endswith("s") else f"I am into {a}."][rng.integers(4)])
    else:  # the description misses the core interest: self-reports are incomplete
        s = tiers["secondary"][0]
        bits.append(f"I like {like(s)}.")
    if tiers.get("emerging") and rng.random() < 0.35:
        bits.append([f"Recently got into {like(tiers['emerging'])}.", f"Lately curious about {like(tiers['emerging'])}."][rng.integers(2)])
    if colour_pref and rng.random() < 0.5:
        bits.append(f"I love anything in {colour_pref}.")
    if noise_ok and rng.random() < 0.4:
        bits.append(rng.choice(USER_NOISE))
    if rng.random() < 0.1:  # pure noise: an interest the user does not have
        bits.append(f"My partner likes {like(rng.choice(list(SUBCATEGORIES)))}.")
    return " ".join(bits)


def generate(cfg: ShopConfig = ShopConfig()) -> dict:
    """Build the shop in memory: ``{"items", "users", "interactions", "truth", "user_truth", "item_truth",
    "images", "config"}``."""
    rng = np.random.default_rng(cfg.seed)
    items, item_truth, images = _items(cfg, rng)
    arrays = _catalogue_arrays(items, item_truth, cfg)
    subs = list(SUBCATEGORIES)
    sub_weight = np.array([arrays["appeal"][arrays["by_sub"][s]].sum() for s in subs])
    sub_weight = sub_weight / sub_weight.sum()
    start = pd.Timestamp(cfg.start)
    span_s = cfg.days * 86400
    item_ids = items[C.ITEM].to_numpy()

    # sign-ups: user ids follow the order of registration; some registered before the log started
    # the others sign up at a rate that grows linearly over the log (a growing shop): u = sqrt(uniform)
    signup_u = np.sort(np.where(rng.random(cfg.n_users) < cfg.registered_frac, -rng.uniform(0, 1, cfg.n_users),
                                np.sqrt(rng.uniform(0, 1, cfg.n_users))))
    n_cold = int(round(cfg.cold_user_frac * cfg.n_users))
    cold = np.zeros(cfg.n_users, dtype=bool)
    cold[rng.choice(cfg.n_users, size=n_cold, replace=False)] = True

    users, inter, truth, user_truth = [], [], [], []
    colours = list(COLOURS)
    for k in range(cfg.n_users):
        user_id = f"u{k + 1:04d}"
        core, secondary, emerging, fading = _pick_interests(rng, subs, sub_weight)
        first = max(float(signup_u[k]), 0.0)  # the first moment the user can act
        has_emerging, has_fading = rng.random() < cfg.emerging_frac, rng.random() < cfg.fading_frac
        tiers = {  # a tier is a change the user lived through: registered before it began
            "core": core,
            "secondary": secondary,
            "emerging": emerging if has_emerging and first <= EMERGING_BY else None,
            "fading": fading if has_fading and first <= FADING_BY else None,
        }
        colour_pref = colours[rng.integers(len(colours))] if rng.random() < cfg.colour_pref_frac else ""
        price_pref = ["budget", "premium"][rng.integers(2)] if rng.random() < cfg.price_pref_frac else ""
        activity = rng.lognormal(cfg.activity_mu, cfg.activity_sigma) * (0.5 + 0.5 * (1 - first))
        n = 0 if cold[k] else int(np.clip(np.round(activity), 1, cfg.max_activity))
        says = rng.random()
        if says < cfg.describe_frac:
            text = _describe(rng, tiers, colour_pref)
        elif says < cfg.describe_frac + cfg.vague_frac or cold[k]:  # a user who never acts still said something
            text = VAGUE_USER[rng.integers(len(VAGUE_USER))]
        else:
            text = ""
        signup = start + pd.Timedelta(seconds=int(np.floor(signup_u[k] * span_s)))
        users.append({C.USER: user_id, C.DESCRIPTION: text})
        user_truth.append({C.USER: user_id, "colour_pref": colour_pref, "price_pref": price_pref,
                           "is_cold": bool(cold[k]), "signup": signup.isoformat()})

        # ground truth: each interest's expected share of the user's in-interest activity while registered
        grid = np.linspace(first, 1, 201)
        gw = _interest_weights(grid, tiers, cfg.fading_floor)
        total = sum(v.mean() for v in gw.values())
        for tier in C.TIERS:
            names = tiers[tier] if tier == "secondary" else [tiers[tier]]
            for s in names:
                if s:
                    truth.append({C.USER: user_id, C.INTEREST: s, C.CATEGORY: SUBCATEGORIES[s]["category"],
                                  C.TIER: tier, C.WEIGHT: round(float(gw[s].mean() / total), 4)})
        if n == 0:
            continue
        u = np.sort(first + (1 - first) * rng.random(n))
        cdf = np.cumsum(_item_distribution(u, {"tiers": tiers, "colour_pref": colour_pref, "price_pref": price_pref},
                                           arrays, cfg), axis=1)
        picks = np.minimum((cdf < rng.random(n)[:, None] * cdf[:, -1:]).sum(axis=1), len(item_ids) - 1)
        kinds = rng.choice(3, size=n, p=[0.65, 0.25, 0.10])
        for t in range(n):
            event = ("view", "click", "purchase")[kinds[t]]
            ts = start + pd.Timedelta(seconds=int(u[t] * span_s))
            inter.append({C.USER: user_id, C.ITEM: item_ids[picks[t]], C.TIMESTAMP: ts.isoformat(), C.EVENT: event,
                          C.WEIGHT: C.EVENT_WEIGHTS[event]})

    return {
        "items": items,
        "users": pd.DataFrame(users),
        "interactions": pd.DataFrame(inter),
        "truth": pd.DataFrame(truth),
        "user_truth": pd.DataFrame(user_truth),
        "item_truth": item_truth,
        "images": images,
        "config": asdict(cfg),
    }


def _config_of(ds: Dataset) -> ShopConfig:
    """The ``ShopConfig`` a loaded shop was generated with (its ``config.json``)."""
    path = Path(ds.root) / "config.json" if ds.root is not None else None
    if path is None or not path.is_file():
        raise DataError(f"{path}: config.json not found; the oracle needs the shop's own settings. "
                        "Regenerate it with: python -m course_lib.data --out data/shop")
    raw = json.loads(path.read_text())
    known = {f for f in ShopConfig.__dataclass_fields__}
    return ShopConfig(**{k: v for k, v in raw.items() if k in known})


def oracle_scores(ds: Dataset, users, at) -> np.ndarray:
    """The generator oracle: ``(len(users), len(ds.items))`` probabilities that each user's next event, at time
    ``at``, picks each item, under the very process that generated the shop (its hidden interests and tiers, appeal,
    colour and price preferences, launch curve and exploration share; 0 for an item not yet launched).

    Columns follow ``ds.items`` row order, which is the order of ``Catalogue.from_items(ds.items)``. Each row sums to
    1. It reads the hidden truth (``truth_*.csv`` and ``config.json`` beside the data): a ceiling to measure methods
    against, never a method itself.
    """
    if ds.name != "shop" or ds.truth is None or ds.user_truth is None:
        raise ValueError(f"oracle_scores needs the shop with its ground truth, got dataset {ds.name!r}")
    cfg = _config_of(ds)
    at = pd.Timestamp(at) if not isinstance(at, pd.Timestamp) else at
    if pd.isna(at):
        raise ValueError(f"at must be a time such as '2026-09-01', got {at!r}")
    item_truth = read_table(Path(ds.root) / FILES["item_truth"], [C.ITEM, "appeal", "launch"], dtype={C.ITEM: str},
                            fix="Regenerate it with: python -m course_lib.data --out data/shop")
    arrays = _catalogue_arrays(ds.items, item_truth, cfg)
    users = [users] if isinstance(users, str) else list(users)
    tiers_of: dict = {}  # user -> tier -> interests, in the truth file's order (one pass, no per-user filter)
    for u, interest, tier in zip(ds.truth[C.USER], ds.truth[C.INTEREST], ds.truth[C.TIER]):
        tiers_of.setdefault(u, {t: [] for t in C.TIERS})[tier].append(interest)
    ut = ds.user_truth
    prefs = {u: (str(c), str(pr)) for u, c, pr in zip(ut[C.USER], ut["colour_pref"], ut["price_pref"])}
    missing = [u for u in users if u not in tiers_of or u not in prefs]
    if missing:
        raise ValueError(f"users {missing[:3]} are not in the shop's ground truth; pass user ids of ds.users")
    u_at = _normalised_time([at], cfg)
    out = np.zeros((len(users), len(ds.items)))
    for r, u in enumerate(users):
        by_tier = tiers_of[u]
        tiers = {"core": by_tier["core"][0], "secondary": by_tier["secondary"],
                 "emerging": (by_tier["emerging"] or [None])[0], "fading": (by_tier["fading"] or [None])[0]}
        colour, price = prefs[u]
        out[r] = _item_distribution(u_at, {"tiers": tiers, "colour_pref": colour, "price_pref": price}, arrays, cfg)[0]
    return out


def verdict_support(ds: Dataset, test_frac: float = 0.2) -> pd.Series:
    """How many test users stand behind each of the course's verdicts, under its global time split (the last
    ``test_frac`` of events by time are test; ``course_lib.params.report_splits``).

    A user counts when they have a *relevant* test item as the discovery task defines it (a test item not in their
    own training history): ``test users`` (all of them), ``new users`` (no training events), ``with a relevant new
    item`` (one nobody had in training), ``tail users`` (1–4 training events), ``with emerging-tier test items`` and
    ``with fading-tier test items`` (an item of the subcategory that is the user's true emerging / fading interest).
    """
    from .splits import make_split
    from ..segments import THRESHOLDS

    if ds.truth is None:
        raise ValueError(f"verdict_support needs a dataset with ground truth (the shop), got {ds.name!r}")
    split = make_split(ds.interactions, "global", test_frac)
    train, test = split.train, split.test
    seen = train.groupby(C.USER)[C.ITEM].agg(set)
    n_train = train.groupby(C.USER).size()
    trained_items = set(train[C.ITEM])
    sub = ds.items.set_index(C.ITEM)[C.SUBCATEGORY]
    rel = test[[C.USER, C.ITEM]].drop_duplicates()
    rel = rel[[i not in seen.get(u, ()) for u, i in zip(rel[C.USER], rel[C.ITEM])]]
    rel = rel.assign(sub=rel[C.ITEM].map(sub).to_numpy())
    tier = ds.truth.set_index([C.USER, C.INTEREST])[C.TIER]
    rel["tier"] = [tier.get((u, s)) for u, s in zip(rel[C.USER], rel["sub"])]
    users = pd.Index(rel[C.USER].unique())
    n = n_train.reindex(users, fill_value=0)
    return pd.Series({
        "test users": len(users),
        "new users": int((n == 0).sum()),
        "with a relevant new item": rel.loc[~rel[C.ITEM].isin(trained_items), C.USER].nunique(),
        "tail users": int(((n >= 1) & (n < THRESHOLDS[0])).sum()),
        "with emerging-tier test items": rel.loc[rel["tier"] == "emerging", C.USER].nunique(),
        "with fading-tier test items": rel.loc[rel["tier"] == "fading", C.USER].nunique(),
    }, name="test users")


# ---------------------------------------------------------------------------------------------------------
# writing (atomic) and loading
# ---------------------------------------------------------------------------------------------------------
def write(shop: dict, out: str | Path) -> Path:
    """Write a generated shop to ``out`` (CSV tables, PNG images, ``config.json``); each file atomically."""
    import io

    from PIL import Image

    out = Path(out)
    for key, name in FILES.items():
        atomic_write(out / name, shop[key].to_csv(index=False, lineterminator="\n").encode("utf-8"))
    for item_id, arr in shop["images"].items():
        buf = io.BytesIO()
        Image.fromarray(arr, mode="RGB").save(buf, format="PNG", optimize=True)
        atomic_write(out / "images" / f"{item_id}.png", buf.getvalue())
    atomic_write(out / "config.json", (json.dumps(shop["config"], indent=2) + "\n").encode())
    return out


def default_root() -> Path:
    """``data/shop`` of the kit checkout (override with ``$COURSE_DATA_DIR``/shop)."""
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        return Path(env) / "shop"
    return Path(__file__).resolve().parents[2] / "data" / "shop"


def shop_fingerprint(ds: Dataset) -> str:
    """A short hash of the shop's items and events (ids, texts, times): two results with the same fingerprint were
    measured on the same data; a regenerated shop gives another one."""
    import hashlib

    h = hashlib.sha256()
    for frame in (ds.items[[C.ITEM, C.TEXT]], ds.interactions[[C.USER, C.ITEM, C.TIMESTAMP]]):
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def load_shop(root: str | Path | None = None) -> Dataset:
    """Load the shop from ``root`` (default ``data/shop``), validated, timestamps parsed."""
    root = check_root(root)
    root = root if root is not None else default_root()
    fix = "Regenerate it with: python -m course_lib.data --out data/shop"
    if not root.is_dir():
        raise DataError(f"{root}: shop folder not found. {fix}")
    items = read_table(root / FILES["items"], [C.ITEM, C.TITLE, C.CATEGORY, C.SUBCATEGORY, C.COLOUR, C.PRICE,
                                                 C.DESCRIPTION, C.IMAGE], dtype={C.ITEM: str}, fix=fix)
    for col in (C.DESCRIPTION, C.IMAGE, C.BRAND):
        if col in items:
            items[col] = items[col].fillna("")
    users = read_table(root / FILES["users"], [C.USER, C.DESCRIPTION], dtype={C.USER: str}, fix=fix)
    users[C.DESCRIPTION] = users[C.DESCRIPTION].fillna("")
    inter = read_table(root / FILES["interactions"], [C.USER, C.ITEM, C.TIMESTAMP, C.EVENT, C.WEIGHT],
                       dtype={C.USER: str, C.ITEM: str}, fix=fix)
    inter[C.TIMESTAMP] = parse_timestamps(inter)
    truth = read_table(root / FILES["truth"], [C.USER, C.INTEREST, C.TIER, C.WEIGHT], dtype={C.USER: str}, fix=fix)
    user_truth = read_table(root / FILES["user_truth"], [C.USER], dtype={C.USER: str}, fix=fix).fillna("")
    return Dataset("shop", items, users, inter, truth=truth, user_truth=user_truth, root=root)


def label_queries() -> dict:
    """Each subcategory's everyday name ("smartwatch", "running shoes"): the words a keyword search would use."""
    return {sub: spec["literal"][0] for sub, spec in SUBCATEGORIES.items()}


def label_words() -> dict:
    """Each subcategory's name plus two of its paraphrases: a richer vocabulary for naming interests zero-shot."""
    return {sub: f"{spec['literal'][0]}: {', '.join(spec['nouns'][:2])}" for sub, spec in SUBCATEGORIES.items()}


def grounding_terms() -> dict:
    """The words the shop's texts use for its subcategories and product features, for checking what a language
    model says (``llm.Vocabulary.from_items(items, synonyms=grounding_terms())``): ``{"subcategory": {sub: names
    and paraphrases}, "feature": {feature phrase without its article: []}}``."""
    subs = {sub: [*spec["literal"], *spec["nouns"]] for sub, spec in SUBCATEGORIES.items()}
    feats = {re.sub(r"^(a|an|the) ", "", f): [] for spec in SUBCATEGORIES.values() for f in spec["features"]}
    return {"subcategory": subs, "feature": feats}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_lib.data", description=__doc__)
    p.add_argument("--out", default=str(default_root()), help="folder to write (default: data/shop)")
    p.add_argument("--seed", type=int, default=C.SEED)
    args = p.parse_args(argv)
    shop = generate(ShopConfig(seed=args.seed))
    out = write(shop, args.out)
    print(f"wrote {len(shop['items'])} items, {len(shop['users'])} users, "
          f"{len(shop['interactions'])} interactions to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
