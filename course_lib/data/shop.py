"""The shop teaching dataset: a seeded generator with known ground truth, and its loader.

Not real data: every user's true interests and tiers are known, so later notebooks can score tiering and
cold-start against the truth. Regenerate with ``python -m course_lib.data --out data/shop``.
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
from .shop_catalogue import (BRANDS, COLOURS, FILLER, MODEL_WORDS, PATTERNS, RELATED, SUBCATEGORIES,
                             USER_NOISE)
from ..files import atomic_write
from .shop_images import draw_item

FILES = {
    "items": "items.csv",
    "users": "users.csv",
    "interactions": "interactions.csv",
    "truth": "truth_interests.csv",
    "user_truth": "truth_users.csv",
}


@dataclass(frozen=True)
class ShopConfig:
    """Knobs of the generator. The committed ``data/shop`` uses the defaults."""

    seed: int = C.SEED  # everything below is drawn from one numpy Generator seeded here
    n_items: int = 1200  # products, spread unevenly over the subcategories
    n_users: int = 1200  # users, including the cold ones
    cold_item_frac: float = 0.05  # items that never receive an interaction (cold-start lesson)
    cold_user_frac: float = 0.05  # users with a self-description and no interactions
    start: str = "2026-04-01"  # first day of the interaction log
    days: int = 182  # about six months
    activity_mu: float = 2.3  # log-normal activity: median ~10 interactions per warm user
    activity_sigma: float = 1.25  # ... and a long tail up to a few hundred
    max_activity: int = 500
    explore_frac: float = 0.15  # interactions outside the user's interests (gifts, curiosity)
    emerging_frac: float = 0.45  # users with an interest that only appears recently
    fading_frac: float = 0.4  # users with an interest that only appears early on
    colour_pref_frac: float = 0.3  # users who favour one colour
    price_pref_frac: float = 0.3  # users who favour budget or premium items
    describe_frac: float = 0.8  # warm users with a self-description (cold users always have one)
    colour_in_text_frac: float = 0.5  # items whose description names their colour
    literal_noun_frac: float = 0.3  # items whose description uses the subcategory's own name
    image_size: int = 64

    def __post_init__(self):
        integer("seed", self.seed, min=0, max=2**32 - 1)
        integer("n_items", self.n_items, min=1)
        integer("n_users", self.n_users, min=1)
        for name in ("cold_item_frac", "cold_user_frac", "explore_frac", "emerging_frac", "fading_frac",
                     "colour_pref_frac", "price_pref_frac", "describe_frac", "colour_in_text_frac", "literal_noun_frac"):
            number(name, getattr(self, name), min=0, max=1, fix="a fraction of items or users")
        try:
            pd.Timestamp(self.start)
        except (TypeError, ValueError):
            raise ValueError(f"start must be a date like '2026-04-01', got {self.start!r}") from None
        integer("days", self.days, min=1)
        number("activity_mu", self.activity_mu)
        number("activity_sigma", self.activity_sigma, min=0)
        integer("max_activity", self.max_activity, min=1)
        integer("image_size", self.image_size, min=8, fix="pixels per side, e.g. 64")


# ---------------------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------------------
def _items(cfg: ShopConfig, rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
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
            description = " ".join(parts[i] for i in order)
            images[item_id] = draw_item(spec["shape"], COLOURS[colour], pattern, rng, cfg.image_size)
            rows.append({
                C.ITEM: item_id, C.TITLE: title, C.CATEGORY: cat, C.SUBCATEGORY: sub, C.BRAND: brand,
                C.COLOUR: colour, "pattern": pattern, C.PRICE: price, C.DESCRIPTION: description,
                C.IMAGE: f"images/{item_id}.png",
            })
    items = pd.DataFrame(rows)
    items["popularity"] = rng.lognormal(0, 1.1, size=len(items))  # latent appeal, long-tailed (not saved)
    return items, images


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


def _interest_weights(u: np.ndarray, tiers: dict) -> dict:
    """Unnormalised weight of each interest at normalised time ``u`` in [0, 1] (the generative process)."""
    w = {tiers["core"]: np.full_like(u, 1.0)}
    for s in tiers["secondary"]:
        w[s] = np.full_like(u, 0.45)
    if tiers.get("emerging"):
        w[tiers["emerging"]] = np.clip((u - 0.6) / 0.25, 0, 1) * 1.4  # absent before 60% of the log
    if tiers.get("fading"):
        w[tiers["fading"]] = np.clip((0.45 - u) / 0.2, 0, 1) * 1.0  # gone after 45% of the log
    return w


def _describe(rng, tiers, colour_pref, noise_ok=True) -> str:
    like = lambda s: rng.choice(SUBCATEGORIES[s]["likes"])  # noqa: E731
    bits = []
    if rng.random() < 0.85:
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
    """Build the shop in memory: ``{"items", "users", "interactions", "truth", "user_truth", "images"}``."""
    rng = np.random.default_rng(cfg.seed)
    items, images = _items(cfg, rng)
    n_cold_items = int(round(cfg.cold_item_frac * len(items)))
    cold_items = set(rng.choice(items[C.ITEM].to_numpy(), size=n_cold_items, replace=False))
    warm = items[~items[C.ITEM].isin(cold_items)].reset_index(drop=True)
    by_sub = {s: g for s, g in warm.groupby(C.SUBCATEGORY)}
    subs = list(SUBCATEGORIES)
    sub_weight = np.array([warm.loc[warm[C.SUBCATEGORY] == s, "popularity"].sum() for s in subs])
    sub_weight = sub_weight / sub_weight.sum()
    global_p = warm["popularity"].to_numpy() / warm["popularity"].sum()
    start = pd.Timestamp(cfg.start)
    span_s = cfg.days * 86400

    users, inter, truth, user_truth = [], [], [], []
    n_cold_users = int(round(cfg.cold_user_frac * cfg.n_users))
    colours = list(COLOURS)
    for k in range(1, cfg.n_users + 1):
        user_id = f"u{k:04d}"
        core, secondary, emerging, fading = _pick_interests(rng, subs, sub_weight)
        tiers = {
            "core": core,
            "secondary": secondary,
            "emerging": emerging if rng.random() < cfg.emerging_frac else None,
            "fading": fading if rng.random() < cfg.fading_frac else None,
        }
        colour_pref = colours[rng.integers(len(colours))] if rng.random() < cfg.colour_pref_frac else ""
        price_pref = ["budget", "premium"][rng.integers(2)] if rng.random() < cfg.price_pref_frac else ""
        is_cold = k > cfg.n_users - n_cold_users
        n = 0 if is_cold else int(np.clip(np.round(rng.lognormal(cfg.activity_mu, cfg.activity_sigma)), 1, cfg.max_activity))
        describe = is_cold or rng.random() < cfg.describe_frac
        users.append({C.USER: user_id, C.DESCRIPTION: _describe(rng, tiers, colour_pref) if describe else ""})
        user_truth.append({C.USER: user_id, "colour_pref": colour_pref, "price_pref": price_pref, "is_cold": is_cold})

        # ground truth: each interest's expected share of the user's in-interest activity over the log
        grid = np.linspace(0, 1, 201)
        gw = _interest_weights(grid, tiers)
        total = sum(v.mean() for v in gw.values())
        for tier in C.TIERS:
            names = tiers[tier] if tier == "secondary" else [tiers[tier]]
            for s in names:
                if s:
                    truth.append({C.USER: user_id, C.INTEREST: s, C.CATEGORY: SUBCATEGORIES[s]["category"],
                                  C.TIER: tier, C.WEIGHT: round(float(gw[s].mean() / total), 4)})
        if n == 0:
            continue
        u = np.sort(rng.random(n))
        w = _interest_weights(u, tiers)
        names = list(w)
        probs = np.stack([w[s] for s in names], axis=1)
        probs = probs / probs.sum(axis=1, keepdims=True)
        for t in range(n):
            if rng.random() < cfg.explore_frac:
                row = warm.iloc[rng.choice(len(warm), p=global_p)]
            else:
                s = names[rng.choice(len(names), p=probs[t])]
                cand = by_sub[s]
                p = cand["popularity"].to_numpy().copy()
                if colour_pref:
                    p = p * np.where(cand[C.COLOUR].to_numpy() == colour_pref, 4.0, 1.0)
                if price_pref:
                    cheap = cand[C.PRICE].to_numpy() <= cand[C.PRICE].median()
                    p = p * np.where(cheap == (price_pref == "budget"), 3.0, 1.0)
                row = cand.iloc[rng.choice(len(cand), p=p / p.sum())]
            event = ("view", "click", "purchase")[rng.choice(3, p=[0.65, 0.25, 0.10])]
            ts = start + pd.Timedelta(seconds=int(u[t] * span_s))
            inter.append({C.USER: user_id, C.ITEM: row[C.ITEM], C.TIMESTAMP: ts.isoformat(), C.EVENT: event,
                          C.WEIGHT: C.EVENT_WEIGHTS[event]})

    items = items.drop(columns=["popularity"])
    return {
        "items": items,
        "users": pd.DataFrame(users),
        "interactions": pd.DataFrame(inter),
        "truth": pd.DataFrame(truth),
        "user_truth": pd.DataFrame(user_truth),
        "images": images,
        "config": asdict(cfg),
    }


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
