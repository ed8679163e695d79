"""A short real training run of the demo config end to end on CPU: train, resume, re-evaluate."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--corpus_options", "{n_train_speakers: 8, max_utts: 16, imbalance: 4, n_test_speakers: 4, test_utts: 4, "
        "min_seconds: 1.0, max_seconds: 1.5, n_trials: 60}",
        "--train_dataloader_options", "{batch_size: 8, num_workers: 0, drop_last: True, shuffle: True}",
        "--prep_options", "!new:ltspk.data.prepare.PrepOptions {holdout_per_speaker: 2, valid_per_speaker: 1, "
        "shot_many_above: 8, shot_few_below: 4, progress: False}"]


def run(script, yaml, out, *extra, launcher=None):
    cmd = (launcher or [sys.executable]) + [str(ROOT / "recipes" / script), str(ROOT / "hparams" / yaml),
                                            "--output_folder", str(out), "--data_folder", str(out.parent / "corpus"),
                                            *TINY, *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def latest_ckpt(out):
    return max((out / "save").glob("CKPT+*"), key=lambda p: p.stat().st_mtime)


def test_train_resume_evaluate(tmp_path):
    out = tmp_path / "run"
    r = run("train.py", "demo_tde.yaml", out, "--number_of_epochs", "1")
    assert "SYNTHETIC corpus" in r.stdout
    res = json.loads((out / "results.json").read_text())
    assert res["synthetic"] and res["head"] == "CausalNormHead"
    v = res["verification"]
    assert v["n_trials"] == 60 and 0 <= v["eer"] <= 100 and 0 <= v["min_dcf_0.01"] <= 1
    assert set(v["tde_embeddings"]) == {"0.5", "1"} and 0 <= v["tde_embeddings"]["1"]["eer"] <= 100
    sid = res["speaker_id"]
    assert 0 <= sid["plain"]["overall"] <= 100 and sid["plain"]["n"] == 16
    assert sid["tde alpha=0"] == sid["plain"]  # alpha 0 is the plain classifier
    assert {"tde alpha=1.5", "posthoc_la tau=1"} <= set(sid)
    assert (out / "results.md").read_text().count("|") > 20
    state = torch.load(latest_ckpt(out) / "classifier.ckpt", weights_only=True)
    assert state["embed_mean"].abs().sum() > 0 and bool(state["has_prior"])
    assert (out / "save" / "label_encoder.txt").read_text().count("=>") == 8 + 1

    # resume: a longer run continues from epoch 1 instead of starting again
    run("train.py", "demo_tde.yaml", out, "--number_of_epochs", "2")
    log = (out / "train_log.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["epoch: 1", "epoch: 2"]

    # re-evaluate with other alphas, no retraining
    r = run("evaluate.py", "demo_tde.yaml", out, "--number_of_epochs", "2", "--tde_alphas", "[0.0, 2.5]",
            "--score_norm", "asnorm", "--asnorm_top_k", "4")
    res = json.loads((out / "results.json").read_text())
    assert "tde alpha=2.5" in res["speaker_id"] and "tde alpha=1.5" not in res["speaker_id"]
    a = res["verification"]["asnorm"]
    assert a["cohort_speakers"] == 8 and a["top_k"] == 4 and 0 <= a["eer"] <= 100
    assert "AS-norm top-4" in r.stdout
    assert len((out / "train_log.txt").read_text().splitlines()) == 2

    # decoupled stage 2 on cached embeddings, merged into the run's results
    r = run("retrain_classifier.py", "demo_tde.yaml", out, "--number_of_epochs", "2")
    res = json.loads((out / "results.json").read_text())
    names = set(res["speaker_id"])
    assert {"cRT", "LWS", "NCM"} <= names and any(k.startswith("tau-norm tau=") for k in names)
    assert res["speaker_id"]["cRT"]["n"] == 16 and "tde alpha=2.5" in names
    assert (out / "stage2" / "train_embeddings.npz").is_file()
    assert res["stage2"]["tau_validation"]["source"] == "spkid_valid.csv"
    secs = res["stage2"]["seconds"]
    assert secs["cRT"] + secs["tau-norm"] + secs["LWS"] + secs["NCM"] < 30  # seconds, not an epoch of audio
    r = run("retrain_classifier.py", "demo_tde.yaml", out, "--number_of_epochs", "2")  # cache reused
    assert "embeddings:" not in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("yaml", ["demo_aam.yaml", "demo_la.yaml"])
def test_other_demo_heads(tmp_path, yaml):
    out = tmp_path / "run"
    run("train.py", yaml, out, "--number_of_epochs", "1")
    assert json.loads((out / "results.json").read_text())["head"] == "AAMHead"
