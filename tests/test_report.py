"""The comparison report on two hand-written run folders."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ltspk.embeddings_io import save_arrays
from ltspk.errors import DataError
from ltspk.report import comparison_rows, load_run, markdown

ROOT = Path(__file__).resolve().parents[1]


def make_run(d, name, head, eer, plain_few, extra_modes):
    d.mkdir(parents=True)
    sid = {"plain": {"many": 90.0, "medium": 70.0, "few": plain_few, "overall": 60.0, "n": 6}, **extra_modes}
    (d / "results.json").write_text(json.dumps({
        "experiment": name, "head": head, "synthetic": True,
        "verification": {"eer": eer, "min_dcf_0.01": 0.5, "min_dcf_0.05": 0.4, "n_trials": 6, "enrol_protocol": "audio"},
        "speaker_id": sid}))
    save_arrays(d / "scores_verification.npz", scores=[0.9, 0.8, 0.3, 0.2, 0.7, 0.1], labels=[1, 1, 0, 0, 1, 0])
    save_arrays(d / "spkid_predictions.npz", modes=np.array(["plain"]), speakers=np.array(["a", "a", "b", "b", "c", "c"]),
                targets=np.array([0, 0, 1, 1, 2, 2]), predictions=np.array([[0, 0, 1, 0, 2, 1]]))
    (d / "prepared").mkdir()
    (d / "prepared" / "counts.json").write_text(json.dumps({"counts": {"a": 50, "b": 10, "c": 2}}))
    return d


def test_table_rows_and_bold(tmp_path):
    a = make_run(tmp_path / "a", "demo_aam", "AAMHead", 12.5, 20.0,
                 {"posthoc_la tau=1": {"many": 85.0, "medium": 75.0, "few": 40.0, "overall": 65.0}})
    b = make_run(tmp_path / "b", "demo_tde", "CausalNormHead", 10.0, 30.0, {})
    rows = comparison_rows([load_run(a), load_run(b)])
    assert [(r["run"], r["inference"]) for r in rows] == [
        ("demo_aam", "plain"), ("demo_aam", "posthoc_la tau=1"), ("demo_tde", "plain")]
    assert rows[1]["EER %"] is None and rows[0]["EER %"] == 12.5
    md = markdown(rows, synthetic=True)
    assert "| demo_tde | CausalNormHead | plain | **10.00** |" in md
    assert "| **40.00** | **65.00** |" in md and "SYNTHETIC" in md


def test_compare_cli(tmp_path):
    a = make_run(tmp_path / "a", "demo_aam", "AAMHead", 12.5, 20.0, {})
    b = make_run(tmp_path / "b", "demo_tde", "CausalNormHead", 10.0, 30.0, {})
    out = tmp_path / "cmp"
    r = subprocess.run([sys.executable, "recipes/compare.py", str(a), str(b), "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["run"] for row in rows] == ["demo_aam", "demo_tde"] and rows[1]["EER %"] == "10.0"
    for png in ("shot_groups.png", "per_speaker.png", "det.png"):
        assert (out / png).stat().st_size > 5000
    r = subprocess.run([sys.executable, "recipes/compare.py", str(tmp_path / "nope")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "no results.json" in r.stderr and "Traceback" not in r.stderr


def test_load_run_rejects_other_json(tmp_path):
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(DataError, match="not an ltspk results file"):
        load_run(tmp_path)
