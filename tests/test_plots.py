"""Plot helpers draw what they are given (checked on the figure's own data, not by eye)."""
import numpy as np
import pandas as pd
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


def paired_rows():
    import pandas as pd

    rows = [  # group, method, its group's best, diff, lo, hi (hand-made: one tied, one below, one without interval)
        ("all", "EASE", "hybrid", -0.01, -0.03, 0.01), ("all", "popularity", "hybrid", -0.10, -0.12, -0.08),
        ("new", "EASE", "popularity", 0.0, 0.0, 0.0), ("new", "hybrid", "popularity", -0.05, np.nan, np.nan),
    ]
    df = pd.DataFrame(rows, columns=["group", "a", "b", "diff", "lo", "hi"])
    df["users"] = [100, 100, 1, 1]
    df["mean_b"] = [0.2, 0.2, 0.05, 0.05]
    return df


def test_paired_by_group_draws_each_difference_and_its_interval(close_figures):
    import matplotlib.colors as mcolors

    df = paired_rows()
    fig = plots.plot_paired_by_group(df, "ndcg")
    all_ax, new_ax = fig.axes[:2]
    order = [t.get_text() for t in all_ax.get_yticklabels()]
    assert order == ["hybrid", "EASE", "popularity"]  # the best first, then by difference
    assert "best: hybrid" in all_ax.get_title() and "best: popularity" in new_ax.get_title()
    bars = {}
    for container in all_ax.containers:
        (x,), (y,) = container.lines[0].get_xdata(), container.lines[0].get_ydata()
        segment = container.lines[2][0].get_segments()[0]
        bars[order[int(y)]] = (x, segment[0][0], segment[1][0], container.lines[0].get_color())
    assert bars["EASE"][:3] == pytest.approx((-0.01, -0.03, 0.01))
    assert bars["popularity"][:3] == pytest.approx((-0.10, -0.12, -0.08))
    assert mcolors.same_color(bars["EASE"][3], "tab:orange") and mcolors.same_color(bars["popularity"][3], "tab:blue")
    star = all_ax.collections[0].get_offsets()[0]
    assert tuple(star) == (0, order.index("hybrid"))  # the reference sits at 0
    grey = [line for line in new_ax.lines if mcolors.same_color(line.get_color(), "tab:gray")]
    assert len(grey) == 1 and grey[0].get_xdata()[0] == -0.05  # no interval over one user: a point, not a bar


def test_paired_by_group_refuses_what_it_cannot_draw():
    df = paired_rows()
    with pytest.raises(ValueError, match=r"missing column\(s\) \['hi'\]"):
        plots.plot_paired_by_group(df.drop(columns="hi"))
    with pytest.raises(ValueError, match="one best method per group; group 'all' has"):
        plots.plot_paired_by_group(df.assign(b=["hybrid", "EASE", "popularity", "popularity"]))
    with pytest.raises(ValueError, match="no rows with reference == 'best'"):
        plots.plot_paired_by_group(df.assign(reference="popularity"))


def test_training_plot_draws_both_curves_and_the_kept_step(close_figures):
    hist = pd.DataFrame({"step": np.arange(1, 41), "loss": np.linspace(3.0, 1.0, 40)})
    evals = pd.DataFrame({"step": [0, 20, 40], "val": [0.05, 0.08, 0.07]})
    fig = plots.plot_training(hist, evals, "run", best_step=20)
    ax, ax2 = fig.axes
    assert list(ax.lines[0].get_ydata()) == list(hist["loss"])  # raw loss, then its running mean
    assert ax.lines[1].get_ydata()[-1] == pytest.approx(hist["loss"].iloc[-2:].mean())
    assert list(ax2.lines[0].get_ydata()) == [0.05, 0.08, 0.07] and list(ax2.lines[1].get_xdata()) == [20, 20]
    with pytest.raises(ValueError, match="history"):
        plots.plot_training(hist.drop(columns="loss"), evals)


def test_projection_colours_each_category_and_checks_shapes(close_figures):
    labels = ["a", "b", "a", "c"]
    xy = np.arange(8.0).reshape(4, 2)
    fig = plots.plot_projection({"before": xy, "after": -xy}, labels)
    assert len(fig.axes) == 2 and [len(ax.collections) for ax in fig.axes] == [3, 3]
    np.testing.assert_array_equal(fig.axes[1].collections[0].get_offsets(), -xy[[0, 2]])
    with pytest.raises(ValueError, match=r"points\['after'\] must have shape \(4, 2\), got \(3, 2\)"):
        plots.plot_projection({"before": xy, "after": xy[:3]}, labels)


def test_rates_draw_one_bar_per_group_and_series_with_its_interval(close_figures):
    df = pd.DataFrame({"method": ["a", "a", "b", "b"], "on": ["x", "y", "x", "y"], "rate": [0.2, 0.4, 0.6, 0.8],
                       "lo": [0.1, 0.3, 0.5, 0.7], "hi": [0.3, 0.5, 0.7, 0.95]})
    fig = plots.plot_rates(df, "method", "on", target=0.9)
    ax = fig.axes[0]
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b"]
    assert any(list(line.get_xdata()) == [0.9, 0.9] for line in ax.lines)  # the target line
    with pytest.raises(ValueError, match="lo"):
        plots.plot_rates(df.drop(columns="lo"), "method")


def test_paired_by_group_names_its_reference_and_draws_gains_green(close_figures):
    import matplotlib.colors as mcolors

    df = pd.DataFrame({"group": ["ndcg", "ndcg"], "a": ["tier-aware", "multi-interest"],
                       "b": ["single vector", "single vector"], "diff": [0.05, -0.01], "lo": [0.02, -0.03],
                       "hi": [0.08, 0.01]})
    fig = plots.plot_paired_by_group(df, "difference", reference="reference", group_word="")
    ax = fig.axes[0]
    assert ax.get_title().startswith("ndcg\nreference: single vector")
    assert "− reference's" in ax.get_xlabel()
    colours = {round(c.lines[0].get_xdata()[0], 3): c.lines[0].get_color() for c in ax.containers}
    assert mcolors.same_color(colours[0.05], "tab:green") and mcolors.same_color(colours[-0.01], "tab:orange")
    assert "above it" in [t.get_text() for t in fig.legends[0].get_texts()]
