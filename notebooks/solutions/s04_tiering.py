"""Worked solutions for 04_tiering's exercises (tested in tests/test_exercises.py)."""


def n_interests(tiered, user):
    return len([it for it in tiered[user].interests if it.tier != "peripheral"])


def head_core(rec):
    return float(rec["summary"].loc["head", "core found as core"])


def wider(table):
    return table["interest coverage"].idxmax()
