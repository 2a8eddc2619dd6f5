"""Worked solutions for 09_report's exercises (tested in tests/test_exercises.py)."""


def top_returning(ev):
    returning = ev.per_user[ev.per_user["group"] == "returning"]
    return returning.groupby("method")["ndcg"].mean().idxmax()


def n_beat_popularity(ev, n_boot=1000, seed=42):
    others = [m for m in ev.methods if m not in ("random", "popularity")]
    return sum(ev.compare(m, "popularity", "ndcg", n_boot=n_boot, seed=seed).lo > 0 for m in others)


def claim_verdict(diff, lo, hi, n):
    """Exercise 1: the interval decides (not the mean); fewer than 30 users cannot settle a tie."""
    if n == 0 or lo != lo:  # no users, or no interval (lo is nan)
        return "not testable here"
    if n < 30 and lo <= 0 <= hi:
        return f"too few users to judge ({n})"
    if lo > 0:
        return "supported"
    if hi < 0:
        return "refuted"
    return "mixed (tied)"


def repeat_share(train, test):
    """Exercise 2: distinct test (user, item) pairs the user already had in training, as a share."""
    seen = set(zip(train["user_id"], train["item_id"]))
    pairs = set(zip(test["user_id"], test["item_id"]))
    return len(pairs & seen) / len(pairs)


def paired_difference(per_user, a, b):
    """Exercise 5: mean over the users both methods were scored for of a's NDCG minus b's."""
    wide = per_user.pivot_table(index="user", columns="method", values="ndcg").dropna(subset=[a, b])
    return float((wide[a] - wide[b]).mean())
