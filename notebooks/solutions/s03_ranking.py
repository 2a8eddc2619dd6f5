"""Worked solutions for 03_ranking's exercises (tested in tests/test_exercises.py)."""
import numpy as np

from course_lib.rank import top_k


def seen_in_top(unmasked, seen, row=0):
    return len(set(unmasked[row].tolist()) & set(seen[row]))


def ids_above(items, sims, threshold=0.6):
    return [item for item, sim in zip(items["item_id"], sims) if sim >= threshold]


def top_books_subcategory(items, profiles, item_vecs):
    books = np.flatnonzero(items["category"].to_numpy() == "books")
    _, idx = top_k(profiles[:1], item_vecs, 1, candidates=books)
    return items["subcategory"].iloc[idx[0, 0]]
