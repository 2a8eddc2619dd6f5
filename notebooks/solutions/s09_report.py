"""Worked solutions for 09_report's exercises (tested in tests/test_exercises.py)."""


def top_returning(ev):
    returning = ev.per_user[ev.per_user["group"] == "returning"]
    return returning.groupby("method")["ndcg"].mean().idxmax()


def n_beat_popularity(ev, n_boot=1000, seed=42):
    others = [m for m in ev.methods if m not in ("random", "popularity")]
    return sum(ev.compare(m, "popularity", "ndcg", n_boot=n_boot, seed=seed).lo > 0 for m in others)
