"""Worked solutions for 10_scaling's exercises (tested in tests/test_scale.py)."""
from course_lib import scale


def memory_ratio(table):
    """The exact matrix's memory over IVF-PQ's."""
    exact = table.loc[table["index"] == "exact", "MiB"].iloc[0]
    ivfpq = table.loc[table["index"] == "IVF-PQ", "MiB"].iloc[0]
    return exact / ivfpq


def recall_gain(table, k=10):
    """HNSW's recall@k at the largest efSearch minus at the smallest (the rows are in the order searched)."""
    hnsw = table[table["index"] == "HNSW"]
    return hnsw[f"recall@{k}"].iloc[-1] - hnsw[f"recall@{k}"].iloc[0]


def first_user_items(profiles, catalogue, seen, n_users=5, k=3):
    """The first user's list from recommend_all on the first ``n_users`` users, as item ids."""
    _, idx = scale.recommend_all(profiles[:n_users], catalogue, k, exclude=seen[:n_users])
    return catalogue.ids[idx[0]].tolist()
