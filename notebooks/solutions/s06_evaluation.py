"""Worked solutions for 06_evaluation's exercises (tested in tests/test_exercises.py)."""
import math


def ndcg_user_a():
    # list a, b, c, d; relevant b, d, z: hits at ranks 2 and 4; the ideal list has 3 hits at ranks 1..3
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    return dcg / idcg


def best_method(table):
    return table["ndcg"].idxmax()


def inflation(leak):
    return leak["random split (leaks the future)"]["recall"].iloc[0] / leak["temporal split (what we use)"]["recall"].iloc[0]
