"""Choosing settings on validation, and one results record rebuilt from the stages."""

import json

import pytest

from ltspk.evaluation.records import Record, choose_on_validation, collect, rebuild_results, stage_document, sweep_records
from ltspk.runtime.atomic import write_json
from ltspk.runtime.errors import DataError


def test_setting_is_chosen_on_validation_not_test():
    # validation is best at tau = 0.5, test would be best at tau = 1.5: the headline must be 0.5
    valid = {0.0: 60.0, 0.5: 80.0, 1.0: 70.0, 1.5: 50.0}
    test = {0.0: 61.0, 0.5: 65.0, 1.0: 70.0, 1.5: 90.0}
    recs, chosen = sweep_records("evaluate", "posthoc_la", "posthoc_tau", list(valid),
                                 valid_metric=lambda v: {"overall": valid[v]},
                                 test_metrics=lambda v: {"overall": test[v]})
    assert chosen == 0.5
    head = [r for r in recs if r.role == "headline"]
    assert len(head) == 1 and head[0].params == {"posthoc_tau": 0.5} and head[0].metrics == {"overall": 65.0}
    assert head[0].split == "spkid_test" and head[0].chosen_on == {"split": "spkid_valid", "metric": "overall accuracy",
                                                                   "value": 80.0}
    assert {r.params["posthoc_tau"] for r in recs if r.role == "diagnostic"} == {0.0, 1.0, 1.5}
    assert all(r.split == "spkid_valid" for r in recs if r.role == "validation")


def test_validation_ties_go_to_the_least_adjustment():
    assert choose_on_validation({0.0: 50.0, 1.0: 50.0, 2.0: 40.0}) == 0.0
    assert choose_on_validation({0.5: 50.0, 1.5: 50.0}, neutral=1.0) in (0.5, 1.5)
    assert choose_on_validation({0.2: 50.0, 1.5: 50.0}) == 0.2


def _stage(run, stage, records, info=None):
    folder = run / ("evaluation" if stage == "evaluate" else "stage2")
    write_json(folder / "records.json", stage_document(stage, records, info or {}))


def test_reevaluation_keeps_stage2_and_results_md_lists_it(tmp_path):
    acc = {"many": 90.0, "medium": 80.0, "few": 40.0, "overall": 70.0, "n": 10}
    _stage(tmp_path, "evaluate", [Record("evaluate", "speaker_id", "plain", "spkid_test", acc)],
           {"experiment": "x", "seed": 1})
    _stage(tmp_path, "stage2", [Record("stage2", "speaker_id", "cRT", "spkid_test", {**acc, "few": 55.0})],
           {"seconds": {}})
    rebuild_results(tmp_path)
    # evaluation again (its folder replaced): the stage-2 record is still in results.json and results.md
    _stage(tmp_path, "evaluate", [Record("evaluate", "speaker_id", "plain", "spkid_test", {**acc, "few": 45.0})],
           {"experiment": "x", "seed": 1})
    res = rebuild_results(tmp_path)
    fams = [(r.stage, r.family, r.metrics["few"]) for r in res["records"]]
    assert fams == [("evaluate", "plain", 45.0), ("stage2", "cRT", 55.0)]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["schema_version"] == 2 and doc["run"]["experiment"] == "x" and len(doc["records"]) == 2
    md = (tmp_path / "results.md").read_text()
    assert "| stage2 | cRT | 90.00 | 80.00 | 55.00 | 70.00 |" in md


def test_collect_needs_evaluation_records_and_the_right_schema(tmp_path):
    with pytest.raises(DataError, match="no evaluation records"):
        collect(tmp_path)
    write_json(tmp_path / "evaluation" / "records.json", {"schema_version": 1, "records": []})
    with pytest.raises(DataError, match="schema"):
        collect(tmp_path)


def test_record_rejects_unknown_role():
    with pytest.raises(ValueError, match="role"):
        Record("evaluate", "speaker_id", "plain", "spkid_test", {}, role="best-on-test")


def test_cos_diagnostics_by_shot_group_by_hand():
    from types import SimpleNamespace

    import numpy as np
    import torch

    from ltspk.evaluation.evaluate import diagnostic_records, distribution
    from ltspk.heads import CausalNormHead

    d = distribution(np.array([0.1, 0.3, 0.2, 0.6]), np.array(["few", "few", "many", "many"]))
    assert d["few"]["mean"] == pytest.approx(0.2) and d["many"]["median"] == pytest.approx(0.4)
    assert d["overall"]["q25"] == pytest.approx(0.175) and "medium" not in d  # numpy's linear quartile
    h = CausalNormHead(2, 2, num_heads=1)
    with torch.no_grad():
        h.embed_mean.copy_(torch.tensor([1.0, 0.0]))   # d = [1, 0]
    x = torch.tensor([[3.0, 4.0], [0.0, 1.0]])          # cos = 0.6, 0.0
    split = SimpleNamespace(x=x, groups=np.array(["many", "few"]))
    (valid,) = diagnostic_records(h, split, "spkid_valid")
    assert valid.task == "diagnostic" and valid.role == "diagnostic" and valid.family == "cos_to_direction"
    assert valid.metrics["many"]["mean"] == pytest.approx(0.6) and valid.metrics["few"]["mean"] == pytest.approx(0.0)
    assert valid.metrics["suggested"]["tde_alpha"] == pytest.approx(1 / 0.3)  # alpha * mean cos = 1
    (test,) = diagnostic_records(h, split, "spkid_test")
    assert "suggested" not in test.metrics             # the rule is applied on validation only
