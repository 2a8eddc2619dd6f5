"""Worked solutions for 04_tiering's exercises (tested in tests/test_exercises.py)."""
from course_lib import constants as C
from course_lib.recovery import recovery
from course_lib.serving import SlotPolicy, allocate_slots
from course_lib.tiers import discover, retier, with_settings


def n_interests_08(ds, catalogue, user, cfg):
    """Non-peripheral interests of ``user`` when discovery joins items up to a cosine distance of 0.8."""
    history = ds.interactions[ds.interactions[C.USER] == user]
    ui = discover(history, catalogue, with_settings(cfg, distance_threshold=0.8))
    return sum(it.tier != "peripheral" for it in ui.interests)


def fading_recall_60(tiered, truth, item_labels, held_out, cfg):
    """Fading recall on held-out users once a fading interest must also have been quiet for 60 days."""
    quiet = retier(tiered, with_settings(cfg, fading_quiet_days=60))
    return float(recovery(quiet, truth, item_labels, users=held_out)["summary"].loc["all", "fading recall"])


def fading_slots():
    """Slots of the fading interest when fading interests count half (fading_weight=0.5)."""
    return int(allocate_slots([0.5, 0.2, 0.3], ["core", "secondary", "fading"], 10, SlotPolicy(fading_weight=0.5))[2])
