"""The student edition (solutions out, nbgrader's way) and grading a workshop (fixtures: right, partly wrong, raising,
never ending)."""
import csv
import time
from pathlib import Path

import nbformat
import pytest

from course_lib import editions, grading
from course_lib.report import NOTEBOOK_DIR, list_notebooks

# ---- the student edition ----------------------------------------------------------------------------------


def test_a_region_in_a_function_becomes_nbgraders_stub():
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    y = x + 1\n    return y\n    ### END SOLUTION\n\nf"
    assert editions.strip_solutions(src) == ("def f(x):\n    '''doc'''\n    # YOUR CODE HERE\n"
                                             "    raise NotImplementedError()\n\nf")


def test_a_top_level_region_becomes_none_answers():
    src = "### BEGIN SOLUTION\na, b = 1, 2\nc: int = a + b\ndef g():\n    return 3\n### END SOLUTION\nprint(a)"
    out = editions.strip_solutions(src)
    assert out.splitlines() == ["a = None  # YOUR CODE HERE", "b = None  # YOUR CODE HERE",
                                "c = None  # YOUR CODE HERE", "g = None  # YOUR CODE HERE", "print(a)"]


@pytest.mark.parametrize("src,msg", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a ### BEGIN SOLUTION"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_unpaired_markers_are_an_error(src, msg):
    with pytest.raises(editions.EditionError, match=msg):
        editions.strip_solutions(src)


def test_the_student_edition_holds_no_solution(tmp_path):
    paths = editions.write_student_edition(tmp_path / "student")
    assert [p.name for p in paths] == [p.name for p in list_notebooks(NOTEBOOK_DIR)]
    assert not (tmp_path / "student" / "solutions").exists()
    n_regions = 0
    for path in paths:
        teacher = nbformat.read(str(NOTEBOOK_DIR / path.name), as_version=4)
        student = nbformat.read(str(path), as_version=4)
        assert [c.get("id") for c in student.cells] == [c.get("id") for c in teacher.cells]
        for t, s in zip(teacher.cells, student.cells):
            assert "BEGIN SOLUTION" not in s.source and "END SOLUTION" not in s.source
            if editions.BEGIN in t.source:
                n_regions += 1
                solution = t.source.split(editions.BEGIN)[1].split(editions.END)[0]
                body = [ln.strip() for ln in solution.splitlines() if len(ln.strip()) > 25]
                assert not any(ln in s.source for ln in body), f"{path.name}: solution text left in the student cell"
            if editions.is_exercise_cell(t):
                assert s.outputs == [] and s.execution_count is None
    assert n_regions >= 14  # two code exercises in each of 00-06
    # written again over itself: fine; over a folder that is not an edition: refused
    editions.write_student_edition(tmp_path / "student")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(editions.EditionError, match="not an edition"):
        editions.write_student_edition(tmp_path / "mine")


def test_every_notebook_opens_its_exercises_with_code_and_has_solutions():
    n_code = 0
    for path in list_notebooks(NOTEBOOK_DIR):
        nb = nbformat.read(str(path), as_version=4)
        regions = [c for c in nb.cells if editions.BEGIN in c.source]
        calls = [c for c in nb.cells if c.cell_type == "code" and "exercises.check" in c.source]
        assert len(regions) >= 2, path.name
        first_check = calls[0].source
        assert "exercises.check_" in first_check.split("exercises.check(")[0], f"{path.name}: the first exercise is code"
        n_code += sum("exercises.check_" in c.source for c in calls)
    assert n_code >= 25, f"{n_code} code exercises in all; the course asks for at least 25"


def test_the_teachers_edition_passes_its_own_exercises():
    """The committed notebooks ran their solutions: every check left a "passed" trace."""
    for path in list_notebooks(NOTEBOOK_DIR):
        found = grading.traces(nbformat.read(str(path), as_version=4))
        assert len(found) >= 3 and {t["status"] for t in found} == {"passed"}, (path.name, found)


# ---- grading ----------------------------------------------------------------------------------------------
SOLVED = '''def torso_users(interactions, lo, hi):
    ### BEGIN SOLUTION
    n = interactions.groupby("user_id").size()
    return int(((n >= lo) & (n < hi)).sum())
    ### END SOLUTION'''
CELLS = [
    "from course_lib import exercises",
    SOLVED,
    "_ = exercises.check_torso_users(torso_users)",
    "def ndcg_at_k(recommended, relevant, k):\n    ### BEGIN SOLUTION\n    import math\n"
    "    if not relevant:\n        return float('nan')\n    seen, dcg = set(), 0.0\n"
    "    for r, i in enumerate(recommended[:k], 1):\n        if i in relevant and i not in seen:\n"
    "            dcg += 1 / math.log2(r + 1)\n        seen.add(i)\n"
    "    return dcg / sum(1 / math.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))\n    ### END SOLUTION",
    "_ = exercises.check_ndcg(ndcg_at_k)",
    "### BEGIN SOLUTION\nanswer = 3\n### END SOLUTION",
    "_ = exercises.check('three', answer, 3)",
]


def _notebook(path: Path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@pytest.fixture
def submissions(tmp_path):
    root = tmp_path / "submissions"
    _notebook(root / "ana" / "tiny.ipynb", CELLS)  # right
    wrong = list(CELLS)
    wrong[1] = SOLVED.replace("n < hi", "n <= hi")  # the upper bound counted in
    wrong[5] = "answer = None"
    _notebook(root / "ben" / "tiny.ipynb", wrong)  # partly wrong, partly not answered
    raising = list(CELLS)
    raising[3] = "def ndcg_at_k(recommended, relevant, k):\n    return 1 / 0"
    raising.insert(5, "undefined_name + 1")  # a broken cell between checks: the later ones still run
    _notebook(root / "cleo" / "tiny.ipynb", raising)
    _notebook(root / "dev" / "tiny.ipynb", CELLS[:3] + ["while True:\n    pass"] + CELLS[3:])  # never ends
    (root / "eve").mkdir()
    (root / "eve" / "tiny.ipynb").write_text("{not json")  # not even a notebook
    return root


def test_grading_the_fixtures(submissions, tmp_path):
    t0 = time.perf_counter()
    rows = grading.grade(submissions, tmp_path / "grades.csv", timeout=20, reference=tmp_path / "none",
                         cwd=tmp_path, echo=None)
    assert time.perf_counter() - t0 < 120
    with open(tmp_path / "grades.csv", newline="") as f:
        assert list(csv.DictReader(f)) == [{k: str(v) for k, v in r.items()} for r in rows]
    got = {(r["learner"], r["exercise"]): r["status"] for r in rows}
    assert got == {
        ("ana", "torso_users"): "passed", ("ana", "ndcg_at_k"): "passed", ("ana", "three"): "passed",
        ("ben", "torso_users"): "failed", ("ben", "ndcg_at_k"): "passed", ("ben", "three"): "not answered",
        ("cleo", "torso_users"): "passed", ("cleo", "ndcg_at_k"): "error", ("cleo", "three"): "passed",
        ("dev", "torso_users"): "passed", ("dev", "ndcg_at_k"): "error", ("dev", "three"): "error",
        ("eve", "torso_users"): "error", ("eve", "ndcg_at_k"): "error", ("eve", "three"): "error",
    }
    detail = {(r["learner"], r["exercise"]): r["detail"] for r in rows}
    assert "time limit" in detail["dev", "three"] and "could not open" in detail["eve", "three"]


def test_the_student_edition_runs_and_says_not_answered(tmp_path):
    """00_welcome's student edition, graded: it runs to the end and every exercise is "not answered"."""
    editions.write_student_edition(tmp_path / "student")
    sub = tmp_path / "subs" / "new_learner"
    sub.mkdir(parents=True)
    (sub / "00_welcome.ipynb").write_bytes((tmp_path / "student" / "00_welcome.ipynb").read_bytes())
    rows = grading.grade(tmp_path / "subs", None, timeout=300, echo=None)
    assert len(rows) >= 3 and {r["status"] for r in rows} == {"not answered"}, rows


def test_bad_grading_arguments(tmp_path):
    with pytest.raises(grading.GradingError, match="submissions must be a folder"):
        grading.grade(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(grading.GradingError, match="no learner folders"):
        grading.grade(tmp_path / "empty")
    with pytest.raises(grading.GradingError, match="timeout must be"):
        grading.grade(tmp_path, timeout=0)
