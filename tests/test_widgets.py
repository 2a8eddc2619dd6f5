"""The tier explorer: the function it wraps, the users it offers, and sliders that do what they say."""
import numpy as np
import pytest

from course_lib import constants as C
from course_lib.catalogue import Catalogue
from course_lib.tiers import TierConfig, discover_all
from course_lib.widgets import (HALF_LIFE_RANGE, THRESHOLD_RANGE, control_effects, explore_user, showcase_users,
                                tier_explorer)
from test_tiers import shop_vectors


class LabelEncoder:
    """Encodes each subcategory label onto its own axis (the shop_vectors space): names come out exact."""

    def __init__(self, shop):
        self.subs = list(shop.items[C.SUBCATEGORY].astype("category").cat.categories)

    def encode(self, words):
        return np.array([[1.0 if w == s else 0.0 for s in self.subs] for w in words])


@pytest.fixture(scope="module")
def setup(shop):
    cat = Catalogue.from_items(shop.items, shop_vectors(shop, noise=0.2))
    heavy = shop.interactions.groupby(C.USER).size()
    users = list(heavy[heavy >= 20].index[:120])
    return cat, discover_all(shop.interactions, cat, users=users), {s: s for s in LabelEncoder(shop).subs}


def test_sliders_can_show_their_defaults():
    for (lo, hi, step), default in ((HALF_LIFE_RANGE, TierConfig().half_life_days),
                                    (THRESHOLD_RANGE, TierConfig().distance_threshold)):
        n = (default - lo) / step
        assert lo <= default <= hi and abs(n - round(n)) < 1e-9  # the default is a stop of the slider


def test_showcase_users_put_preferred_and_emerging_first(setup):
    cat, tiered, _ = setup
    offered = showcase_users(tiered, n=20)
    assert len(offered) == 20 and all(tiered[u].n_events >= 20 for u in offered)
    assert "emerging" in tiered[offered[0]].tiers()
    pick = offered[-1]
    assert showcase_users(tiered, n=20, prefer=[pick])[0] == pick


def test_the_sliders_change_what_they_claim_for_the_users_offered(shop, setup):
    cat, tiered, _ = setup
    offered = showcase_users(tiered, n=20)
    effects = control_effects(shop, cat, offered, TierConfig())
    moved = (effects["interests at low threshold"] != effects["interests at high threshold"]).mean()
    assert moved >= 0.7  # the old explorer: 7 of 50 (43 users sat at the cap of 8 at every threshold)
    assert effects["tiers differ across half-lives"].mean() >= 0.5


def test_explore_user_returns_the_timeline_tiers_and_list(shop, setup, close_figures):
    cat, tiered, words = setup
    user = showcase_users(tiered, n=5)[0]
    fig, table, merged = explore_user(shop, cat, user, TierConfig(), words, LabelEncoder(shop), k=6, show=False)
    assert len(table) == len(tiered[user].interests) and table["tier"].iloc[0] == "core"
    assert len(merged) == 6 and merged[C.ITEM].is_unique
    seen = set(shop.interactions.loc[shop.interactions[C.USER] == user, C.ITEM])
    assert not seen & set(merged[C.ITEM])
    assert merged["from interest"].str.contains(r"\((?:core|secondary|emerging|fading|peripheral)\)").all()
    assert fig.axes


def test_the_explorer_builds_with_the_configured_values(shop, setup):
    pytest.importorskip("ipywidgets")
    cat, tiered, words = setup
    cfg = TierConfig()
    w = tier_explorer(shop, cat, showcase_users(tiered, n=3), cfg, words, LabelEncoder(shop))
    values = {c.description: c.value for c in w.children if hasattr(c, "description")}
    assert values["half-life (d)"] == cfg.half_life_days and values["threshold"] == cfg.distance_threshold
