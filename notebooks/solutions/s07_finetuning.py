"""Worked solutions for 07_finetuning's exercises (tested in tests/test_exercises.py)."""
from course_lib import finetune as ft


def loss_scale5(anchors, cands):
    """Section 3's loss by hand with scale 5. Here it is *lower* than at 20: the frozen model often ranks a negative
    above the positive, and a softer softmax punishes that confident mistake less (at scale 0 every loss is
    log(number of candidates))."""
    a = anchors / anchors.norm(dim=1, keepdim=True)
    c = cands / cands.norm(dim=1, keepdim=True)
    return float(-(5.0 * a @ c.T).log_softmax(dim=1).diagonal().mean())


def n_trainable_5(model_name):
    _, model = ft.load_encoder(model_name)
    return ft.freeze_bottom(model, 5)


def tail_vs_ease(ev, n_boot=1000, seed=42):
    return ev.compare("content (tuned)", "EASE", segment="tail", n_boot=n_boot, seed=seed).diff
