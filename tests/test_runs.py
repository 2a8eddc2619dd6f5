"""The run record (metrics.json, schema 2): built with the keys notebook 09 writes, in that order and as the README
documents them; written and read back unchanged; and a broken record refused in one line that names the fix."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from course_lib import constants as C
from course_lib import runs
from course_lib.baselines import EASE, Popularity
from course_lib.data import make_split
from course_lib.evaluate import evaluation_to_dict, paired_to_dict, per_user_to_csv
from course_lib.files import write_json

# the keys of the dict notebook 09's cell "## 10. metrics.json" wrote before it called runs.build_record, in order
NOTEBOOK_09_KEYS = ["schema_version", "config", "notes", "dataset", "content_space", "content_fallback",
                    "hybrid_content_share", "finetuned_hybrid_content_share", "k", "task", "users",
                    "unreachable_share", "metrics", "groups", "segments",
                    "methods", "split", "per_user", "paired", "headlines", "verdicts", "strategy", "fidelity", "llm",
                    "tier_recovery"]


@pytest.fixture(scope="module")
def inputs(shop, tmp_path_factory):
    from course_lib.evaluate import evaluate

    split = make_split(shop.interactions, "global", 0.2)
    ev = evaluate({"popularity": Popularity(shop.items), "EASE": EASE(shop.items)}, split.train, split.test,
                  shop.items, k=10)
    out = tmp_path_factory.mktemp("run")
    per_user = per_user_to_csv(ev, out / "per_user.csv")
    verdicts = pd.DataFrame([{"claim": "c", "evidence": "e", "verdict": "tied"}])
    strategy = pd.DataFrame({"best": ["EASE"], "NDCG": [0.1]}, index=pd.Index(["tail"], name="segment"))
    fidelity = pd.DataFrame({"users": [3], "faithful": [True]}, index=pd.Index(["EASE"], name="method"))
    tiers = pd.DataFrame({"users": [5.0], "emerging recall": [np.nan]}, index=["all"])
    return dict(config={"dataset": "shop", "k": 10}, notes=["a note"], summary=shop.summary(),
                content_space="text only", content_fallback="popularity", hybrid_content_share=np.float64(0.25),
                ev=ev, n_boot=50, seed=C.SEED, split=split, per_user=per_user,
                paired=paired_to_dict(ev, "ndcg", n_boot=50, seed=C.SEED), headlines=["one line"],
                verdicts=verdicts, strategy=strategy, fidelity=fidelity, tier_recovery=tiers), out


def notebook_09_dict(config, notes, summary, content_space, content_fallback, hybrid_content_share, ev, n_boot, seed,
                     split, per_user, paired, headlines, verdicts, strategy, fidelity, tier_recovery):
    """The dict literal of notebook 09's cell as it was before runs.build_record (the reference it must equal)."""
    return {"schema_version": 2, "config": config, "notes": notes,
            "dataset": {k: (v.item() if hasattr(v, "item") else v) for k, v in summary["value"].items()},
            "content_space": content_space, "content_fallback": content_fallback,
            "hybrid_content_share": float(hybrid_content_share), "finetuned_hybrid_content_share": None,
            **evaluation_to_dict(ev, n_boot=n_boot, seed=seed),
            "split": {"fingerprint": split.fingerprint(), "train interactions": len(split.train),
                      "test interactions": len(split.test)},
            "per_user": per_user, "paired": paired, "headlines": headlines,
            "verdicts": verdicts.to_dict(orient="records"),
            "strategy": strategy.reset_index().to_dict(orient="records"),
            "fidelity": fidelity.reset_index().to_dict(orient="records"), "llm": None,
            "tier_recovery": None if tier_recovery is None else
            {seg: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
             for seg, row in tier_recovery.iterrows()}}


def test_the_record_is_what_notebook_09_wrote(inputs):
    args, _ = inputs
    record = runs.build_record(**args)
    assert list(record) == NOTEBOOK_09_KEYS == list(runs.KEYS)
    assert json.dumps(record, default=str, sort_keys=False) == json.dumps(notebook_09_dict(**args), default=str)
    assert record["tier_recovery"] == {"all": {"users": 5.0, "emerging recall": None}}
    assert runs.build_record(**{**args, "tier_recovery": None})["tier_recovery"] is None


def test_the_readme_documents_every_key():
    from conftest import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("### Report outputs: `metrics.json`"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    documented = []
    for line in block.splitlines():
        m = re.match(r"^([a-z_]+(?:, [a-z_]+)*)\s{2,}", line)
        if m:
            documented += m.group(1).split(", ")
    assert documented == list(runs.KEYS)


def test_written_records_read_back_unchanged(inputs, tmp_path):
    args, _ = inputs
    record = runs.build_record(**args)
    path = runs.write_record(tmp_path / "metrics.json", record)
    back = runs.read_record(path)
    def finite(x):  # what strict JSON holds: NaN becomes null
        if isinstance(x, dict):
            return {k: finite(v) for k, v in x.items()}
        if isinstance(x, list):
            return [finite(v) for v in x]
        return None if isinstance(x, float) and not np.isfinite(x) else x

    assert back == finite(json.loads(json.dumps(record, default=str)))
    assert list(back) == list(runs.KEYS)


def test_older_schema_2_records_are_read_without_later_keys(tmp_path):
    old = {"schema_version": 2, "config": {"dataset": "shop"}, "k": 10}
    write_json(tmp_path / "metrics.json", old)
    assert runs.read_record(tmp_path / "metrics.json") == old
    with pytest.raises(runs.RunRecordError, match=r"lacks key\(s\) \['notes', 'dataset'.*runs.build_record"):
        runs.write_record(tmp_path / "new.json", old)
    assert not (tmp_path / "new.json").exists()


@pytest.mark.parametrize("record, message", [
    ("[1, 2]", "schema_version 2 with a config expected, got 'list'"),
    ('{"schema_version": 1, "config": {}}', "schema_version 2 with a config expected, got 1"),
    ('{"schema_version": 2, "config": []}', "schema_version 2 with a config expected, got 2"),
    ('{"schema_version": 2, "config": {}, "methods": []}', "methods must be a dict, got list"),
    ('{"schema_version": 2, "config": {}, "tier_recovery": 3}', "tier_recovery must be a dict or NoneType, got int"),
    ('{"schema_version": 2, "config": {}, "split": {"fingerprint": "abc"}}', "split.fingerprint must be 'sha256:"),
    ('{"schema_version": 2, "config": {}, "per_user": {"rows": -1}}', "per_user.rows must be a count >= 0, got -1"),
    ("{not json", "is not a report's metrics.json: not JSON"),
])
def test_broken_records_are_refused_in_one_line(tmp_path, record, message):
    path = tmp_path / "metrics.json"
    path.write_text(record)
    with pytest.raises(runs.RunRecordError) as e:
        runs.read_record(path)
    assert message in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)
