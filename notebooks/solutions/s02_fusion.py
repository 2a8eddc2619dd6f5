"""Worked solutions for 02_fusion's exercises (tested in tests/test_exercises.py)."""
import numpy as np

from course_lib.catalogue import Catalogue
from course_lib.diagnostics import neighbour_precision
from course_lib.evaluate import profile_recall
from course_lib.fuse import fuse_text_image


def recall_at_alpha(items, text_vecs, image_vecs, train, valid, alpha=0.25, k=10):
    fused = fuse_text_image(text_vecs, image_vecs, alpha)
    return profile_recall(train, valid, Catalogue.from_items(items, fused), k).value


def hist_sub_colour(hist_vecs, sub_colour, k=10):
    return neighbour_precision(hist_vecs, sub_colour, k)


# ---- code exercises (the notebook's cells between ### BEGIN SOLUTION / ### END SOLUTION) ----
def fuse(text_vecs, image_vecs, alpha):
    t = text_vecs / np.linalg.norm(text_vecs, axis=1, keepdims=True)
    i = image_vecs / np.linalg.norm(image_vecs, axis=1, keepdims=True)
    return np.hstack([np.sqrt(alpha) * t, np.sqrt(1 - alpha) * i])


def weighted_cosine(text_a, text_b, image_a, image_b, alpha):
    def cos(x, y):
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))

    return alpha * cos(text_a, text_b) + (1 - alpha) * cos(image_a, image_b)
