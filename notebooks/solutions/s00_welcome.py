"""Worked solutions for 00_welcome's exercises (tested in tests/test_solutions.py)."""
from collections import Counter


def answers(ds):
    counts = Counter(ds.interactions["user_id"])
    few = sum(1 for n in counts.values() if n < 5)

    category = dict(zip(ds.items["item_id"], ds.items["category"]))
    top_category = Counter(category[i] for i in ds.interactions["item_id"]).most_common(1)[0][0]

    per_item = sorted(Counter(ds.interactions["item_id"]).values(), reverse=True)
    k = max(1, len(ds.items) // 100)
    top1pct_share = sum(per_item[:k]) / len(ds.interactions)
    return {"few": few, "top_category": top_category, "top1pct_share": top1pct_share}
