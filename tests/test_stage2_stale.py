"""Results never mix models or arguments silently: stage-2 records of an older model than the one
evaluated are left out of results.json / results.md and said to be stale, and recipes/sweep.py
refuses to reuse a run folder made with other arguments."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import recipe_module

from ltspk.evaluation.records import Record, rebuild_results, stage_document
from ltspk.runtime.atomic import write_json

ROOT = Path(__file__).resolve().parents[1]
ACC = {"many": 90.0, "medium": 80.0, "few": 40.0, "overall": 70.0, "n": 10}


def _stage(run, stage, records, info):
    folder = run / ("evaluation" if stage == "evaluate" else "stage2")
    write_json(folder / "records.json", stage_document(stage, records, info))


def test_stage2_of_an_older_model_is_left_out_and_said_so(tmp_path):
    old, new = "a" * 64, "b" * 64
    _stage(tmp_path, "evaluate", [Record("evaluate", "speaker_id", "plain", "spkid_test", ACC)],
           {"experiment": "x", "seed": 1, "model_sha256": old})
    _stage(tmp_path, "stage2", [Record("stage2", "speaker_id", "cRT", "spkid_test", {**ACC, "few": 55.0})],
           {"model_sha256": old, "seconds": {}})
    res = rebuild_results(tmp_path)
    assert [r.family for r in res["records"]] == ["plain", "cRT"] and not res["stale"]

    # more training, then evaluation of the new model: stage 2 is of the old one
    _stage(tmp_path, "evaluate", [Record("evaluate", "speaker_id", "plain", "spkid_test", {**ACC, "few": 45.0})],
           {"experiment": "x", "seed": 1, "model_sha256": new})
    res = rebuild_results(tmp_path)
    assert [r.family for r in res["records"]] == ["plain"]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [r["family"] for r in doc["records"]] == ["plain"]
    stale = doc["stale"]["stage2"]
    assert old[:12] in stale and new[:12] in stale and "retrain_classifier.py" in stale
    md = (tmp_path / "results.md").read_text()
    assert "STALE stage2" in md and "| stage2 |" not in md


def _fake_runs(monkeypatch, sweep, ran):
    def run(cmd, *args, **kwargs):
        ran.append(cmd)
        if cmd[1].endswith("train.py"):
            out = Path(cmd[cmd.index("--output_folder") + 1])
            write_json(out / "evaluation" / "records.json", {})
        return SimpleNamespace(returncode=0)
    monkeypatch.setattr(sweep.subprocess, "run", run)


def test_sweep_refuses_a_run_made_with_other_arguments(tmp_path, monkeypatch):
    sweep = recipe_module("sweep")
    ran = []
    _fake_runs(monkeypatch, sweep, ran)
    hp = str(ROOT / "hparams" / "demo_aam.yaml")
    base = [hp, "--seeds", "1", "--root", str(tmp_path / "runs")]
    sweep.main([*base, "--", "--number_of_epochs", "2"])
    assert [Path(c[1]).name for c in ran] == ["train.py", "compare.py"]
    folder = tmp_path / "runs" / "demo_aam" / "1"
    assert json.loads((folder / "sweep.json").read_text())["arguments"][-2:] == ["--number_of_epochs", "2"]

    ran.clear()
    sweep.main([*base, "--", "--number_of_epochs", "2"])  # the same sweep again: the run is reused
    assert [Path(c[1]).name for c in ran] == ["compare.py"]

    ran.clear()
    with pytest.raises(SystemExit) as e:
        sweep.main([*base, "--", "--number_of_epochs", "3"])
    msg = str(e.value.code)
    assert str(folder) in msg and "'--number_of_epochs', '2'" in msg and "'--number_of_epochs', '3'" in msg
    assert ran == []  # refused before anything runs


def test_sweep_refuses_a_run_folder_it_did_not_record(tmp_path, monkeypatch):
    sweep = recipe_module("sweep")
    ran = []
    _fake_runs(monkeypatch, sweep, ran)
    folder = tmp_path / "runs" / "demo_aam" / "1"
    write_json(folder / "evaluation" / "records.json", {})  # a run made otherwise (by hand, or an older sweep)
    with pytest.raises(SystemExit) as e:
        sweep.main([str(ROOT / "hparams" / "demo_aam.yaml"), "--seeds", "1", "--root", str(tmp_path / "runs")])
    assert str(folder) in str(e.value.code) and "no record of the arguments" in str(e.value.code)
    assert ran == []
