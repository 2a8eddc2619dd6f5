"""Worked solutions for 08_explanations' exercises (tested in tests/test_exercises.py)."""
from course_lib import llm as L
from course_lib.data.shop import grounding_terms
from course_lib.explain import explain, fidelity


def top_share(model, user, catalogue):
    top = catalogue.ids[int(model.recommend([user], 1)[0, 0])]
    return explain(model, user, top).contributions[0].share


def grounded(text, items, history_ids, interest_names):
    vocab = L.Vocabulary.from_items(items, synonyms=grounding_terms())
    evidence = L.evidence_from_items(items, history_ids, interests=interest_names)
    return L.check_grounding(text, evidence, vocab).ok


def leave_rate(model, users, k=10, seed=42):
    f = fidelity(model, users, k=k, n_cite=1, seed=seed)
    return float(f[f"leaves top-{k} (cited removed)"].mean())


def flags_invented(sentence, evidence_titles, catalogue_titles):
    """Exercise 1: True when the sentence names a catalogue title outside the evidence (longest titles first)."""
    text = sentence.lower()
    for title in sorted(catalogue_titles, key=len, reverse=True):
        if title.lower() in text:
            if title not in evidence_titles:
                return True
            text = text.replace(title.lower(), " ")
    return False


def content_terms(history_vecs, weights, item_vec):
    """Exercise 2: one term per event, summing to the cosine of the weighted-mean profile and the item."""
    import numpy as np

    w = np.asarray(weights) / np.sum(weights)
    profile = (w[:, None] * history_vecs).sum(0)
    return w * (history_vecs @ item_vec) / np.linalg.norm(profile)
