"""The comparison report on hand-written run folders: seeds aggregated, runs labelled
uniquely, differences against the baseline with intervals, plots written."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltspk.compare.comparison import aggregate, load_run
from ltspk.compare.report import markdown
from ltspk.embedding.tables import save_arrays
from ltspk.evaluation.records import Record, stage_document
from ltspk.runtime.atomic import write_json
from ltspk.runtime.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
SPEAKERS = np.repeat(["a", "b", "c", "d"], 2)  # 8 test items, 2 per speaker
TARGETS = np.repeat([0, 1, 2, 3], 2)
SHOT = {"a": "many", "b": "many", "c": "few", "d": "few"}


def acc(pred):
    c = pred == TARGETS
    few = np.isin(SPEAKERS, ["c", "d"])
    return {"overall": 100 * c.mean(), "many": 100 * c[~few].mean(), "medium": None, "few": 100 * c[few].mean(),
            "n": 8}


def make_run(d, experiment, head, seed, plain_pred, la_pred=None, la_tau=0.0, eer=10.0):
    recs = [Record("evaluate", "speaker_id", "plain", "spkid_test", acc(plain_pred)),
            Record("evaluate", "verification", "cosine", "trials", {"eer": eer, "min_dcf_0.01": 0.5,
                                                                     "min_dcf_0.05": 0.4, "n_trials": 6})]
    modes, preds = ["plain"], [plain_pred]
    if la_pred is not None:
        recs.append(Record("evaluate", "speaker_id", "posthoc_la", "spkid_test", acc(la_pred), {"posthoc_tau": 1.0},
                           "headline", {"split": "spkid_valid", "metric": "overall accuracy", "value": 50.0}))
        modes.append("posthoc_la posthoc_tau=1")
        preds.append(la_pred)
    info = {"experiment": experiment, "seed": seed, "head": head, "head_label": head, "corpus": "synthetic",
            "synthetic": True, "loss_logit_adjustment_tau": la_tau}
    ev = d / "evaluation"
    write_json(ev / "records.json", stage_document("evaluate", recs, info))
    save_arrays(ev / "spkid_predictions.npz", modes=np.array(modes), speakers=SPEAKERS, targets=TARGETS,
                predictions=np.stack(preds))
    save_arrays(ev / "scores_verification.npz", scores=[0.9, 0.8, 0.3, 0.2, 0.7, 0.1], labels=[1, 1, 0, 0, 1, 0],
                enrol_speakers=["a", "b", "a", "c", "c", "d"], test_speakers=["a", "b", "b", "d", "c", "a"])
    write_json(ev / "counts.json", {"counts": {"a": 50, "b": 40, "c": 3, "d": 2}, "shot_groups": SHOT})
    return d


def runs(tmp_path):
    wrong_few = np.array([0, 0, 1, 1, 0, 0, 0, 0])  # many right, few wrong
    la_fixes = np.array([0, 0, 1, 1, 2, 2, 3, 0])
    return [make_run(tmp_path / "aam1", "demo_aam", "AAMHead", 1, wrong_few),
            make_run(tmp_path / "aam2", "demo_aam", "AAMHead", 2, wrong_few),
            make_run(tmp_path / "la1", "demo_la", "AAMHead", 1, wrong_few, la_fixes, la_tau=1.0, eer=8.0),
            make_run(tmp_path / "la2", "demo_la", "AAMHead", 2, la_fixes, la_fixes, la_tau=1.0, eer=9.0)]


def test_two_seeds_are_two_runs_and_one_aggregated_row(tmp_path):
    loaded = [load_run(d) for d in runs(tmp_path)]
    rows, base = aggregate(loaded)
    assert base == "demo_aam"
    assert [r.label for r in loaded] == ["demo_aam seed=1", "demo_aam seed=2", "demo_la seed=1", "demo_la seed=2"]
    la_plain = next(r for r in rows if r.config == "demo_la" and r.mode == "plain")
    assert la_plain.stats["few"]["n"] == 2 and la_plain.stats["few"]["mean"] == pytest.approx((0 + 75) / 2)
    assert la_plain.stats["few"]["sd"] == pytest.approx(np.std([0, 75], ddof=1))
    # paired differences per seed: few 0 - 0 and 75 - 0; over 2 seeds the t interval is wide
    v = la_plain.versus["few"]
    assert v["mean"] == pytest.approx(37.5) and v["low"] < 0 < v["high"] and v["verdict"] == "within noise"
    la_posthoc = next(r for r in rows if r.config == "demo_la" and r.mode == "posthoc_la")
    assert la_posthoc.chosen == ["posthoc_tau=1", "posthoc_tau=1"]
    assert la_posthoc.versus["few"]["mean"] == pytest.approx(75.0) and la_posthoc.versus["few"]["verdict"] == "better"
    ver = next(r for r in rows if r.config == "demo_la" and r.task == "verification")
    assert ver.versus["eer"]["mean"] == pytest.approx(-1.5)
    md = markdown(rows, loaded, base, synthetic=True)
    assert "| demo_la | AAMHead | stage 1 | posthoc_la | posthoc_tau=1; posthoc_tau=1 | 2 |" in md
    assert "37.50 ± 53.03" in md and "SYNTHETIC" in md and "demo_aam seed=2" in md


def test_same_seed_twice_gets_folder_labels(tmp_path):
    p = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    a = make_run(tmp_path / "x", "demo_aam", "AAMHead", 1, p)
    b = make_run(tmp_path / "y", "demo_aam", "AAMHead", 1, p)
    loaded = [load_run(a), load_run(b)]
    aggregate(loaded)
    assert [r.label for r in loaded] == ["demo_aam seed=1 (x)", "demo_aam seed=1 (y)"]


def test_compare_cli_writes_tables_and_plots(tmp_path):
    folders = runs(tmp_path)
    out = tmp_path / "cmp"
    r = subprocess.run([sys.executable, "recipes/compare.py", *map(str, folders), "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert {row["config"] for row in rows} == {"demo_aam", "demo_la"}
    assert all(row["seeds"] == "2" for row in rows)
    for png in ("shot_groups.png", "per_speaker.png", "det.png"):
        assert (out / png).stat().st_size > 5000
    assert not (out / "imbalance.png").exists()  # one imbalance factor: nothing to plot against
    r = subprocess.run([sys.executable, "recipes/compare.py", str(tmp_path / "nope")], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode != 0 and "no such run folder" in r.stderr and "Traceback" not in r.stderr


def test_load_run_rejects_other_json(tmp_path):
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / "records.json").write_text(json.dumps({"records": []}))
    with pytest.raises(DataError, match="schema"):
        load_run(tmp_path)
