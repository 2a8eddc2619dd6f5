"""The exercise checker and the worked solutions (solutions must pass their own checks)."""
import importlib.util
from pathlib import Path

import pytest

from course_lib import exercises

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


def load_solution(name):
    spec = importlib.util.spec_from_file_location(name, SOLUTIONS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("answer,expected,kw,ok", [
    (3, 3, {}, True),
    (3.0, 3, {}, True),
    (4, 3, {}, False),
    (0.3334, 1 / 3, {"tol": 1e-3}, True),
    (0.34, 1 / 3, {"tol": 1e-3}, False),
    (float("nan"), 0.5, {}, False),
    ("books", "books", {}, True),
    (["b", "a"], {"a", "b"}, {}, True),
    ([1, 2], [1, 2], {}, True),
    ([2, 1], [1, 2], {}, False),
    (True, 1, {}, False),
    ("x", 2.0, {}, False),
])
def test_check(answer, expected, kw, ok, capsys):
    assert exercises.check("q", answer, expected, **kw) is ok
    out = capsys.readouterr().out
    assert ("✅" in out) is ok and ("❌" in out) is (not ok)


def test_unanswered_is_not_an_error(capsys):
    assert exercises.check("q", None, 1) is False
    assert "not answered yet" in capsys.readouterr().out


def test_hint_is_shown_on_a_wrong_answer(capsys):
    exercises.check("q", 1, 2, hint="count again")
    assert "Hint: count again" in capsys.readouterr().out


def test_welcome_solutions_pass(shop, capsys):
    answers = load_solution("s00_welcome").answers(shop)
    expected = exercises.welcome_expected(shop)
    assert exercises.check("few", answers["few"], expected["few"])
    assert exercises.check("top", answers["top_category"], expected["top_category"])
    assert exercises.check("share", answers["top1pct_share"], expected["top1pct_share"], tol=1e-9)
    # and the reference itself is sane on the shop
    assert 0 < expected["top1pct_share"] < 0.5 and expected["few"] > 100
