"""Worked solutions for 07_finetuning's exercises (tested in tests/test_exercises.py)."""
from course_lib import finetune as ft


def loss_scale5(anchors, cands):
    """Section 3's loss by hand with scale 5. Here it is *lower* than at 20: the frozen model often ranks a negative
    above the positive, and a softer softmax punishes that confident mistake less (at scale 0 every loss is
    log(number of candidates))."""
    a = anchors / anchors.norm(dim=1, keepdim=True)
    c = cands / cands.norm(dim=1, keepdim=True)
    return float(-(5.0 * a @ c.T).log_softmax(dim=1).diagonal().mean())


def n_adapter(model_name):
    """The adapter is one square matrix as wide as the model's vectors (384 x 384 for MiniLM)."""
    from dataclasses import replace

    return ft.trainable_parameters(replace(ft.ADAPTER, model=model_name))


def my_info_nce(anchors, candidates, scale):
    """Exercise 1: InfoNCE; row i of candidates is anchor i's positive."""
    import torch

    a = torch.nn.functional.normalize(anchors, dim=1)
    c = torch.nn.functional.normalize(candidates, dim=1)
    return torch.nn.functional.cross_entropy(scale * a @ c.T, torch.arange(len(a)))


def adapter_step(W, anchors, items, positives, lr, scale):
    """Exercise 2: W after one gradient step on the adapter's full-catalogue softmax loss."""
    import torch.nn.functional as F

    W = W.clone().requires_grad_(True)
    a, v = F.normalize(anchors @ W, dim=1), F.normalize(items @ W, dim=1)
    F.cross_entropy(scale * a @ v.T, positives).backward()
    return (W - lr * W.grad).detach()


def tail_vs_ease(ev, n_boot=1000, seed=42):
    return ev.compare("content (tuned)", "EASE", segment="tail", n_boot=n_boot, seed=seed).diff


def mean_anchor(item_vecs, context_items, row_of):
    """Exercise 3: the mean of the distinct context items' vectors."""
    rows = sorted({row_of[i] for i in context_items})
    return item_vecs[rows].mean(0)
