"""Worked solutions for 05_cold_start's exercises (tested in tests/test_exercises.py)."""
from course_lib.catalogue import Catalogue
from course_lib.coldstart import cold_item_table, threshold_counts
from course_lib.fuse import fuse_text_image
from course_lib.profiles import history_profiles


def empty_pages(cold_vecs, text_vecs, threshold=0.4):
    return int((threshold_counts(cold_vecs, text_vecs, threshold) == 0).sum())


def first_n(curve, k=10):
    col = f"recall@{k}"
    for n in sorted(curve["n"].unique()):
        rows = curve[curve["n"] == n].set_index("method")[col]
        if rows["blend"] > rows["popularity"]:
            return int(n)
    return -1


def cold_precision(ds, text_vecs, image_vecs, warm, alpha=0.8):
    vecs = fuse_text_image(text_vecs, image_vecs, alpha)
    profiles, _ = history_profiles(ds.interactions, Catalogue.from_items(ds.items, vecs), users=warm)
    table = cold_item_table(warm, {"space": (profiles, vecs)}, ds.items, ds.cold_items(), ds.truth, ds.user_truth, k=5)
    return float(table.loc["space", "precision@5 (true interest)"])
