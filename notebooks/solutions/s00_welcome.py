"""Worked solutions for 00_welcome's exercises (tested in tests/test_exercises.py)."""
from collections import Counter


def answers(ds):
    counts = Counter(ds.interactions["user_id"])
    torso = sum(1 for n in counts.values() if 5 <= n < 20)

    category = dict(zip(ds.items["item_id"], ds.items["category"]))
    users_per_category = {}
    for user, item in zip(ds.interactions["user_id"], ds.interactions["item_id"]):
        users_per_category.setdefault(category[item], set()).add(user)
    top_category_users = max(users_per_category, key=lambda c: len(users_per_category[c]))

    per_item = sorted(Counter(ds.interactions["item_id"]).values(), reverse=True)
    k = max(1, len(ds.items) // 100)
    top1pct_share = sum(per_item[:k]) / len(ds.interactions)
    return {"torso": torso, "top_category_users": top_category_users, "top1pct_share": top1pct_share}


# ---- code exercises (the notebook's cells between ### BEGIN SOLUTION / ### END SOLUTION) ----
def torso_users(interactions, lo=5, hi=20):
    per_user = interactions.groupby("user_id").size()
    return int(((per_user >= lo) & (per_user < hi)).sum())


def top_share(interactions, frac=0.01):
    per_item = interactions.groupby("item_id").size().sort_values(ascending=False)
    top = max(1, int(len(per_item) * frac))
    return float(per_item.iloc[:top].sum() / len(interactions))
