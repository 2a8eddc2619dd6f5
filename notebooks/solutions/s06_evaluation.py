"""Worked solutions for 06_evaluation's exercises (tested in tests/test_exercises.py)."""
import math


def ndcg_user_a():
    # list a, b, c, d; relevant b, d, z: hits at ranks 2 and 4; the ideal list has 3 hits at ranks 1..3
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    return dcg / idcg


def tail_lo(ev, n_boot=1000, seed=42):
    # the same tail users for both methods: a paired interval on the difference
    return ev.compare("EASE", "popularity", "ndcg", segment="tail", n_boot=n_boot, seed=seed).lo


def inflation(leak_table):
    # row 0: the random split, row 1: the time split
    return leak_table["recall"].iloc[0] / leak_table["recall"].iloc[1]
