"""A short real training run of the demo config end to end on CPU: train, resume, re-evaluate."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--corpus_options", "{n_train_speakers: 8, max_utts: 16, imbalance: 4, n_test_speakers: 4, test_utts: 4, "
        "min_seconds: 1.0, max_seconds: 1.5, n_trials: 60}",
        "--train_dataloader_options", "{batch_size: 8, num_workers: 0, drop_last: True, shuffle: True}",
        "--holdout_per_speaker", "2", "--valid_per_speaker", "1", "--shot_many_above", "8", "--shot_few_below", "4"]


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


def records(out):
    from ltspk.evaluation.records import collect

    return collect(out)


def one(res, task, family, role="headline", **params):
    from ltspk.evaluation.records import find

    found = find(res["records"], task, family, role, **params)
    assert len(found) == 1, (task, family, role, params, [r.key for r in res["records"]])
    return found[0]


def test_train_resume_evaluate(tmp_path):
    out = tmp_path / "run"
    tensorboard = importlib.util.find_spec("tensorboard") is not None  # its own test says why it skips otherwise
    r = run("train.py", "demo_tde.yaml", out, "--number_of_epochs", "1", "--noprogressbar",
            *(["--tensorboard", "true"] if tensorboard else []))
    assert "SYNTHETIC corpus" in r.stdout
    # the headline once (verification, then speaker ID plain and the chosen settings), then one summary line
    assert r.stdout.count("| verification |") == 1 and r.stdout.count("| stage | inference |") == 1
    assert "diagnostic" not in r.stdout and "Diagnostics" in (out / "results.md").read_text()
    assert re.search(r"^demo_tde seed 1986: EER [\d.]+% minDCF\(0.01\) [\d.]+ \| speaker ID overall [\d.]+% "
                     r"few [\d.]+% \(plain\)$", r.stdout, re.M), r.stdout[-2000:]
    assert (out / "training_curves.png").stat().st_size > 10_000
    if tensorboard:
        assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert "embeddings:" not in r.stderr  # --noprogressbar silences ltspk's embedding bars too
    res = records(out)
    assert res["run"]["synthetic"] and res["run"]["head"] == "CausalNormHead" and res["run"]["seed"] == 1986
    assert json.loads((out / "results.json").read_text())["schema_version"] == 2
    v = one(res, "verification", "cosine").metrics
    assert v["n_trials"] == 60 and 0 <= v["eer"] <= 100 and 0 <= v["min_dcf_0.01"] <= 1
    tde_emb = {r.params["tde_alpha"] for r in res["records"] if r.family == "tde_embeddings"}
    assert tde_emb == {0.5, 1.0}
    plain = one(res, "speaker_id", "plain").metrics
    assert 0 <= plain["overall"] <= 100 and plain["n"] == 16
    alpha0 = [r for r in find_all(res, "tde", None) if r.split == "spkid_test" and r.params["tde_alpha"] == 0.0]
    assert len(alpha0) == 1 and alpha0[0].metrics == plain  # alpha 0 is the plain classifier
    for family in ("tde", "posthoc_la"):
        chosen = one(res, "speaker_id", family)  # one headline per tunable family, chosen on validation
        assert chosen.chosen_on["split"] == "spkid_valid" and chosen.split == "spkid_test"
        assert len(find_all(res, family, "validation")) == len(find_all(res, family, None)) // 2
    assert (out / "results.md").read_text().count("|") > 20
    state = torch.load(latest_ckpt(out) / "classifier.ckpt", weights_only=True)
    assert state["embed_mean"].abs().sum() > 0 and bool(state["has_prior"])
    assert (out / "save" / "label_encoder.txt").read_text().count("=>") == 8 + 1

    # resume: a longer run (asked for: --extend_epochs) continues from epoch 1 instead of starting again
    run("train.py", "demo_tde.yaml", out, "--number_of_epochs", "2", "--extend_epochs")
    log = (out / "train_log.txt").read_text().splitlines()
    assert [line.split(",")[0] for line in log] == ["epoch: 1", "epoch: 2"]
    assert all(" - valid loss: " in line and "valid error: " in line and "valid acc_few: " in line for line in log)
    checkpoint = records(out)["run"]["checkpoint"]  # the evaluated checkpoint, its extension recorded
    assert checkpoint["epoch"] == 2 and not checkpoint["mid_epoch"] and checkpoint["extended"][0]["number_of_epochs"] == [1, 2]

    # decoupled stage 2 on cached embeddings, beside the evaluation's records
    r = run("retrain_classifier.py", "demo_tde.yaml", out, "--number_of_epochs", "2")
    res = records(out)
    assert r.stdout.count("| stage | inference |") == 1 and "| stage2 | cRT |" in r.stdout
    assert r.stdout.count("demo_tde seed 1986: EER") == 1
    assert one(res, "speaker_id", "cRT").metrics["n"] == 16 and one(res, "speaker_id", "NCM")
    tau_norm = one(res, "speaker_id", "tau_norm")
    assert tau_norm.chosen_on["split"] == "spkid_valid"
    assert "stage2" in (out / "results.md").read_text() and "cRT" in (out / "results.md").read_text()
    secs = res["stages"]["stage2"]["seconds"]
    assert secs["cRT"] + secs["tau_norm"] + secs["LWS"] + secs["NCM"] < 30  # seconds, not an epoch of audio
    r = run("retrain_classifier.py", "demo_tde.yaml", out, "--number_of_epochs", "2")  # cache reused
    assert "embeddings:" not in r.stderr

    # re-evaluate with other alphas, no retraining: stage 2 is kept
    r = run("evaluate.py", "demo_tde.yaml", out, "--number_of_epochs", "2", "--tde_alphas", "[0.0, 2.5]",
            "--score_norm", "asnorm", "--asnorm_top_k", "4")
    res = records(out)
    alphas = {r.params["tde_alpha"] for r in res["records"] if r.family == "tde"}
    assert alphas == {0.0, 2.5}
    a = one(res, "verification", "asnorm")
    assert a.metrics["cohort_speakers"] == 8 and a.params["top_k"] == 4 and 0 <= a.metrics["eer"] <= 100
    assert "asnorm top_k=4" in r.stdout
    assert "evaluated: the latest checkpoint CKPT+" in r.stdout and ", end of epoch 2, optimizer step " in r.stdout
    assert r.stdout.count("| verification |") == 1 and r.stdout.count("demo_tde seed 1986: EER") == 1
    assert one(res, "speaker_id", "cRT") and "cRT" in (out / "results.md").read_text()
    assert len((out / "train_log.txt").read_text().splitlines()) == 2

    # a run folder alone is enough (its saved hyperparams.yaml), from any working directory
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "evaluate.py"), str(out)], capture_output=True,
                       text=True, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert one(records(out), "speaker_id", "cRT")

    # a failing step (verification with an impossible p_target) is recorded; the others are still written
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "evaluate.py"), str(out), "--p_targets", "[2.0]"],
                       capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
                       timeout=600)
    assert r.returncode != 0 and "evaluation step(s) failed: verification" in r.stderr
    res = records(out)
    assert "p_target" in res["failures"]["evaluate: verification"] and one(res, "speaker_id", "plain")
    assert not [x for x in res["records"] if x.stage == "evaluate" and x.task == "verification" and x.split == "trials"]


def find_all(res, family, role):
    from ltspk.evaluation.records import find

    return find(res["records"], "speaker_id", family, role)


@pytest.mark.slow
@pytest.mark.parametrize("yaml", ["demo_aam.yaml", "demo_la.yaml"])
def test_other_demo_heads(tmp_path, yaml):
    out = tmp_path / "run"
    run("train.py", yaml, out, "--number_of_epochs", "1")
    assert json.loads((out / "results.json").read_text())["run"]["head"] == "AAMHead"


def test_a_real_corpus_recipe_end_to_end(tmp_path, monkeypatch):
    """librispeech_aam.yaml as written (SpeechBrain's Augmenter with noise and reverb from folders,
    cyclic lr per step, validation each epoch, best checkpoint evaluated) on a tiny LibriSpeech
    tree, with a tiny ECAPA-TDNN: it trains, validates and evaluates."""
    import numpy as np
    import soundfile as sf
    from conftest import write_audio
    from test_resume_exact import SMALL, train_main

    monkeypatch.setenv("SB_GLOBAL_SEED", os.environ.get("SB_GLOBAL_SEED", "563375142"))  # seed_everything sets it
    root, seed = tmp_path / "LibriSpeech", 2000
    for subset, speakers in {"train-clean-100": ["19", "26", "27", "32"], "test-clean": ["121", "237", "260"]}.items():
        for s in speakers:
            n = {"19": 7, "26": 6, "27": 5, "32": 5}.get(s, 3)
            for k in range(n):
                seed += 1
                write_audio(root / subset / s / "100" / f"{s}-100-{k:04d}.flac", 0.6, seed=seed)
            (root / subset / s / "100" / f"{s}-100.trans.txt").write_text("")
    (root / "SPEAKERS.TXT").write_text("".join(f"{s} | F | {sub} | 1.0 | N{s}\n" for sub, ss in
                                               {"train-clean-100": ["19", "26", "27", "32"],
                                                "test-clean": ["121", "237", "260"]}.items() for s in ss))
    write_audio(tmp_path / "noise" / "n1.wav", 1.0, seed=1)
    (tmp_path / "rir").mkdir()
    sf.write(tmp_path / "rir" / "r1.wav", np.exp(-np.arange(400) / 40.0).astype(np.float32), 16000)
    out = tmp_path / "run"
    small = [a for a in SMALL if a != "--crop_seconds" and a != "0.5"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_main()([str(ROOT / "hparams" / "librispeech_aam.yaml"), "--data_folder", str(tmp_path),
                      "--output_folder", str(out), "--noise_folder", str(tmp_path / "noise"),
                      "--rir_folder", str(tmp_path / "rir"), *small[small.index("--embedding_model"):],
                      "--n_mels", "40", "--sentence_len", "0.5", "--batch_size", "4", "--num_workers", "0",
                      "--number_of_epochs", "2", "--asnorm_top_k", "2",
                      "--n_trials", "30", "--holdout_per_speaker", "1", "--prep_workers", "1"])
    finally:
        torch.set_num_threads(threads)
    log = (out / "train_log.txt").read_text().splitlines()
    assert len(log) == 2 and all("valid acc:" in line for line in log)
    text = (out / "log.txt").read_text()
    assert "augmentation on: AddNoise, AddReverb, DropFreq, DropChunk, SpeedPerturb; each training batch becomes x6" in text
    assert "evaluating the best checkpoint by lowest valid_error" in text
    assert (out / "augment" / "noise.csv").is_file() and (out / "augment" / "rir.csv").is_file()
    res = records(out)
    assert one(res, "verification", "cosine").metrics["n_trials"] > 0
