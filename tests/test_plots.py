"""Plot helpers draw what they are given (checked on the figure's own data, not by eye)."""
import numpy as np
import pytest

from course_lib import constants as C
from course_lib import plots


def test_long_tail_lines_are_sorted_descending(shop, close_figures):
    fig = plots.plot_long_tail(shop)
    for ax, n in zip(fig.axes, (len(shop.users), len(shop.items))):
        y = ax.lines[0].get_ydata()
        assert len(y) == n and np.all(np.diff(y) <= 0)


def test_category_mix_shares_sum_to_one(shop, close_figures):
    fig = plots.plot_category_mix(shop)
    widths = [p.get_width() for p in fig.axes[0].patches]
    n = shop.items[C.CATEGORY].nunique()
    assert sum(widths[:n]) == pytest.approx(1) and sum(widths[n:]) == pytest.approx(1)


def test_timeline_rows_are_the_users_categories(shop, close_figures):
    user = shop.example_user()
    fig = plots.plot_user_timeline(shop, user)
    labels = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    hist = shop.interactions[shop.interactions[C.USER] == user]
    assert labels == set(shop.items.set_index(C.ITEM).loc[hist[C.ITEM], C.CATEGORY])


def test_timeline_of_a_cold_user_says_what_to_do(shop):
    with pytest.raises(ValueError, match="has no interactions; pick a warm user"):
        plots.plot_user_timeline(shop, shop.cold_users()[0])


def test_show_items_draws_one_image_per_item(shop, close_figures):
    ids = shop.items[C.ITEM].iloc[:5].tolist()
    fig = plots.show_items(shop, ids, ncols=3)
    assert sum(len(ax.images) for ax in fig.axes) == 5


def test_example_user_has_emerging_and_fading(shop):
    u = shop.example_user()
    assert {"emerging", "fading"} <= set(shop.truth.loc[shop.truth[C.USER] == u, C.TIER])
