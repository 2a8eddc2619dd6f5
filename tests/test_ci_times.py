"""CI's time table reads pytest's JUnit XML and the browser check's summary (tools/ci_times.py)."""
import json

from tools import ci_times

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_metrics" name="test_ndcg" time="0.5"/>
<testcase classname="tests.test_rank" name="test_top_k" time="1.5"/>
<testcase classname="tests.test_notebooks" name="test_notebook_runs_headless[07_finetuning]" time="120.0"/>
<testcase classname="notebooks.07_finetuning.ipynb" name="Cell 3" time="30.0"/>
<testcase classname="notebooks.07_finetuning.ipynb" name="Cell 9" time="12.5"/>
</testsuite></testsuites>"""


def test_the_table_splits_unit_tests_papermill_nbval_and_browser(tmp_path):
    (tmp_path / "junit.xml").write_text(JUNIT)
    unit, papermill, nbval, n = ci_times.junit_times(tmp_path / "junit.xml")
    assert (unit, n) == (2.0, 2) and papermill == {"07_finetuning": 120.0} and nbval == {"07_finetuning": 42.5}
    (tmp_path / "summary.json").write_text(json.dumps({"opened as executed by papermill": ["07_finetuning"],
                                                       "results": [{"notebook": "07_finetuning",
                                                                    "seconds": {"total": 14.2}}]}))
    table = ci_times.table({"install": 95.0, "make test": 900.0}, tmp_path / "junit.xml", tmp_path / "summary.json")
    assert "| install | 95 |" in table and "| unit tests (2 tests; the notebook runs are below) | 2 |" in table
    assert "| 07_finetuning | 120 | 42 | 14 (opened papermill's copy) |" in table
