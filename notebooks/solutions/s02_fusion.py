"""Worked solutions for 02_fusion's exercises (tested in tests/test_exercises.py)."""
import numpy as np

from course_lib.catalogue import Catalogue
from course_lib.diagnostics import neighbour_precision
from course_lib.evaluate import profile_recall
from course_lib.fuse import fuse_text_image


def recall_at_alpha(items, text_vecs, image_vecs, train, valid, alpha=0.25, k=10):
    fused = fuse_text_image(text_vecs, image_vecs, alpha)
    return profile_recall(train, valid, Catalogue.from_items(items, fused), k).value


def weighted_cos(text_vecs, image_vecs, i=0, j=1, alpha=0.3):
    def cos(v, a, b):
        return float(v[a] @ v[b] / (np.linalg.norm(v[a]) * np.linalg.norm(v[b])))

    return alpha * cos(text_vecs, i, j) + (1 - alpha) * cos(image_vecs, i, j)


def hist_sub_colour(hist_vecs, sub_colour, k=10):
    return neighbour_precision(hist_vecs, sub_colour, k)
