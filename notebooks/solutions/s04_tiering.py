"""Worked solutions for 04_tiering's exercises (tested in tests/test_exercises.py)."""
import numpy as np

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


# ---- code exercises (the notebook's cells between ### BEGIN SOLUTION / ### END SOLUTION) ----
def my_tier_rule(ui, cfg):
    # the default rule with one change: the core is the interest with the most events, counted up by how close it is
    # to the user's own words (affinity), so a self-described passion wins a near-tie in events
    ints = ui.interests
    biggest = sorted(range(len(ints)), key=lambda k: (-ints[k].events, -ints[k].importance))[:cfg.max_interests]
    small = [k not in biggest or it.events < cfg.min_events or it.event_share < cfg.min_share
             for k, it in enumerate(ints)]
    pool = [k for k in range(len(ints)) if not small[k]] or list(range(len(ints)))
    core = max(pool, key=lambda k: (ints[k].events * (1 + ints[k].affinity), ints[k].importance), default=None)
    tiers = []
    for k, it in enumerate(ints):
        new = ui.ages.max() - it.ages.max() >= (1 - cfg.emerging_new_frac) * ui.span_days
        rising = ui.trends_read and it.trend >= cfg.emerging_trend and new
        falling = ui.trends_read and it.trend <= cfg.fading_trend and it.quiet_days >= cfg.fading_quiet_days
        tiers.append("core" if k == core else "peripheral" if small[k] else
                     "emerging" if rising else "fading" if falling else "secondary")
    return tiers


def decayed_importance(ages_days, half_life_days):
    return float(np.sum(0.5 ** (np.asarray(ages_days, dtype=float) / half_life_days)))
