"""Worked solutions for 07_finetuning's exercises (tested in tests/test_exercises.py)."""
from course_lib import finetune as ft


def loss_scale5(anchors, cands):
    """Section 3's loss by hand with scale 5: a softer softmax spreads probability over the wrong candidates, so
    the right one gets less of it and the loss is higher when the positive is the most similar candidate."""
    a = anchors / anchors.norm(dim=1, keepdim=True)
    c = cands / cands.norm(dim=1, keepdim=True)
    return float(-(5.0 * a @ c.T).log_softmax(dim=1).diagonal().mean())


def n_trainable_5(model_name):
    _, model = ft.load_encoder(model_name)
    return ft.freeze_bottom(model, 5)


def tail_vs_ease(ev, n_boot=1000, seed=42):
    return ev.compare("content (tuned)", "EASE", segment="tail", n_boot=n_boot, seed=seed).diff
