"""Synthetic ratings in the exact GroupLens ml-100k layout (u.data, u.item, u.user), shaped like the real files.

The real MovieLens-100k cannot be shipped (license) or downloaded here. What matters for the evaluation protocol is
its shape, so this generator copies it:
- users arrive over seven months and rate most of their films in a burst of a few days (so a global time cut leaves
  many test users with no training history, as on the real files: 192 of 301);
- every user rates at least 20 films; activity is long-tailed;
- item popularity is strongly skewed, and tastes follow genres (so popularity is a strong baseline and
  collaborative filtering beats it on returning users);
- demographics (age, gender, occupation) carry no information about taste, like the real self-descriptions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES_N = 19  # u.item has 19 genre flags


def write_movielens_like(folder: Path, n_users: int = 300, n_items: int = 400, seed: int = 0,
                         start: int = 874_724_710, days: int = 215) -> Path:
    from course_lib.data.movielens import GENRES

    assert len(GENRES) == GENRES_N
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n_genres = GENRES_N - 1  # genre 0 is "unknown"
    item_genres = [rng.choice(np.arange(1, GENRES_N), size=rng.integers(1, 4), replace=False) for _ in range(n_items)]
    g = np.zeros((n_items, GENRES_N))
    for i, gs in enumerate(item_genres):
        g[i, gs] = 1.0
    quality = rng.normal(0, 1, n_items)
    pop = np.exp(1.1 * quality)  # skewed popularity
    latent = rng.normal(0, 1, (n_items, 8))  # co-rating structure beyond genres
    words = ["Night", "Story", "Return", "City", "Love", "War", "Dream", "Heart", "Star", "River", "Ghost", "King"]
    with open(folder / "u.item", "w", encoding="latin-1") as f:
        for i in range(n_items):
            title = f"{words[i % len(words)]} {words[(7 * i + 3) % len(words)]} {i + 1} ({1950 + (i * 7) % 48})"
            flags = ["1" if g[i, k] else "0" for k in range(GENRES_N)]
            f.write(f"{i + 1}|{title}|01-Jan-1995||http://example.org/{i + 1}|" + "|".join(flags) + "\n")
    occupations = ["student", "engineer", "educator", "writer", "artist", "other", "programmer", "librarian"]
    with open(folder / "u.user", "w") as f:
        for u in range(n_users):
            f.write(f"{u + 1}|{rng.integers(15, 70)}|{'MF'[rng.integers(0, 2)]}|{occupations[rng.integers(0, 8)]}|"
                    f"{rng.integers(10000, 99999)}\n")
    arrival = np.sort(rng.uniform(0, days, n_users))
    with open(folder / "u.data", "w") as f:
        for u in range(n_users):
            fav = rng.choice(np.arange(1, GENRES_N), size=rng.integers(1, 4), replace=False)
            taste = np.zeros(GENRES_N)
            taste[fav] = 1.0
            u_lat = rng.normal(0, 1, 8)
            logit = 1.0 * np.log(pop) + 2.0 * (g @ taste) + 0.6 * (latent @ u_lat)
            p = np.exp(logit - logit.max())
            p /= p.sum()
            n = int(min(n_items // 2, 20 + rng.lognormal(3.0, 0.9)))
            chosen = rng.choice(n_items, size=n, replace=False, p=p)
            burst = rng.random(n) < 0.8  # most ratings in the first few days, the rest spread over weeks
            offset = np.where(burst, rng.exponential(1.5, n), rng.exponential(25, n))
            t = start + ((arrival[u] + np.minimum(offset, days - arrival[u])) * 86400).astype(np.int64)
            for i, ts in sorted(zip(chosen, t), key=lambda x: x[1]):
                rating = int(np.clip(np.round(3.5 + 0.5 * quality[i] + rng.normal(0, 0.8)), 1, 5))
                f.write(f"{u + 1}\t{i + 1}\t{rating}\t{ts}\n")
    return folder
