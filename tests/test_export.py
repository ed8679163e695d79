"""Extraction and the exported SpeechBrain model folder give the recipe's own embeddings."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import recipe_module, write_audio
from test_train_e2e import ROOT, TINY, run

from ltspk.data.prepare import PrepOptions
from ltspk.embedding.tables import load_embeddings

EPOCHS = ("--number_of_epochs", "1")  # the run's: a run is used only with the settings it was trained with


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "run"
    run("train.py", "demo_tde.yaml", out, *EPOCHS, "--eval_batch_size", "1")
    return out


def test_extract_folder_matches_evaluation_embeddings(trained, tmp_path):
    wav_dir = trained.parent / "corpus" / "voxceleb1" / "wav"
    run("extract.py", "demo_tde.yaml", trained, *EPOCHS, "--audio_dir", str(wav_dir / "id10270"), "--batch_size", "1",
        "--out", str(tmp_path / "e.npz"), "--ark", str(tmp_path / "e.ark"))
    ids, emb = load_embeddings(tmp_path / "e.npz")
    ref_ids, ref = load_embeddings(trained / "evaluation" / "embeddings_verification.npz")
    ref_of = dict(zip(ref_ids, ref))
    common = [i for i in ids if f"id10270/{i}" in ref_of]
    assert len(common) >= 2 and emb.dtype == np.float32
    for i in common:  # one utterance a batch in both: the same embeddings
        np.testing.assert_allclose(emb[ids.index(i)], ref_of[f"id10270/{i}"], rtol=1e-5, atol=1e-5)
    # batched: padding reaches valid frames through ECAPA's convolutions, so embeddings move a little
    run("extract.py", "demo_tde.yaml", trained, *EPOCHS, "--audio_dir", str(wav_dir / "id10270"), "--batch_size", "8",
        "--out", str(tmp_path / "b.npz"))
    _, batched = load_embeddings(tmp_path / "b.npz")
    cos = (batched * emb).sum(1) / np.linalg.norm(batched, axis=1) / np.linalg.norm(emb, axis=1)
    assert cos.min() > 0.95 and not np.allclose(batched, emb, atol=1e-5)
    kaldiio = pytest.importorskip("kaldiio")
    ark = dict(kaldiio.load_scp(str(tmp_path / "e.scp")))
    np.testing.assert_allclose(ark[ids[0]], emb[0], rtol=1e-6)


def test_extract_from_a_run_folder_alone(trained, tmp_path):
    """RUN_DIR instead of HPARAMS --output_folder RUN_DIR: the run's saved hyperparams.yaml. The first call
    spells the options the older way (--audio-dir, --batch-size), the second as the other recipes do."""
    wav_dir = trained.parent / "corpus" / "voxceleb1" / "wav" / "id10270"
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "extract.py"), str(trained), "--audio-dir", str(wav_dir),
                        "--batch-size", "1", "--out", str(tmp_path / "a.npz")], capture_output=True, text=True,
                       cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    run("extract.py", "demo_tde.yaml", trained, *EPOCHS, "--audio_dir", str(wav_dir), "--batch_size", "1",
        "--out", str(tmp_path / "b.npz"))
    (ids_a, a), (ids_b, b) = load_embeddings(tmp_path / "a.npz"), load_embeddings(tmp_path / "b.npz")
    assert list(ids_a) == list(ids_b) and np.array_equal(a, b)


def test_exported_folder_loads_in_speechbrain(trained, tmp_path):
    model = tmp_path / "model"
    run("extract.py", "demo_tde.yaml", trained, *EPOCHS, "--export_model", str(model))
    assert {"hyperparams.yaml", "embedding_model.ckpt", "classifier.ckpt", "label_encoder.txt"} <= {
        p.name for p in model.iterdir()}
    from speechbrain.inference.speaker import EncoderClassifier

    enc = EncoderClassifier.from_hparams(source=str(model), savedir=str(tmp_path / "sb"), run_opts={"device": "cpu"})
    # one utterance at a time (no padding): the recipe's extraction and SpeechBrain's agree exactly
    one = trained.parent / "corpus" / "voxceleb1" / "wav" / "id10271"
    run("extract.py", "demo_tde.yaml", trained, *EPOCHS, "--audio_dir", str(one), "--batch_size", "1",
        "--out", str(tmp_path / "one.npz"))
    ids, ref = load_embeddings(tmp_path / "one.npz")
    for k in (0, len(ids) - 1):
        wav, sr = sf.read(one / f"{ids[k]}.wav", dtype="float32")
        assert sr == 16000
        emb = enc.encode_batch(torch.from_numpy(wav)[None]).squeeze().numpy()
        np.testing.assert_allclose(emb, ref[k], rtol=1e-5, atol=1e-6)
    out_prob, score, index, label = enc.classify_batch(torch.from_numpy(wav)[None])
    speakers = (trained / "save" / "label_encoder.txt").read_text()
    assert out_prob.shape[-1] == 8 and f"'{label[0]}' => {int(index[0])}" in speakers


def test_extract_skips_bad_files_and_names_short_ones(trained, tmp_path):
    d = tmp_path / "audio"
    d.mkdir()
    for i, f in enumerate(sorted((trained.parent / "corpus" / "voxceleb1" / "wav" / "id10270").rglob("*.wav"))[:2]):
        shutil.copy(f, d / f"good{i}.wav")
    x = np.full(16000, 0.1, dtype=np.float32)
    x[5] = np.nan
    sf.write(d / "nan.wav", x, 16000, subtype="FLOAT")
    (d / "junk.wav").write_bytes(b"not audio")
    write_audio(d / "short.wav", 0.02)
    r = run("extract.py", "demo_tde.yaml", trained, *EPOCHS, "--audio_dir", str(d), "--out", str(tmp_path / "e.npz"))
    assert f"skipped {d / 'nan.wav'}: audio holds NaN or infinite samples" in r.stderr
    assert "3 bad file(s) skipped" in r.stderr and len((tmp_path / "e.bad_files.txt").read_text().splitlines()) == 3
    assert load_embeddings(tmp_path / "e.npz")[0] == ["good0", "good1"]

    def failing(*args):
        cmd = [sys.executable, str(ROOT / "recipes" / "extract.py"), str(ROOT / "hparams" / "demo_tde.yaml"),
               "--output_folder", str(trained), "--data_folder", str(trained.parent / "corpus"), *TINY, *EPOCHS, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
        return r.stderr

    err = failing("--audio_dir", str(d), "--on_bad_file", "raise", "--out", str(tmp_path / "r.npz"))
    assert f"error: {d / 'junk.wav'}: unreadable audio (Format not recognised.) (3 bad file(s) in all" in err
    csv = tmp_path / "short.csv"  # a manifest still holding audio shorter than the model's receptive field
    csv.write_text(f"ID,duration,wav,start,stop,spk_id\nshort,0.02,{d / 'short.wav'},0,320,s\n")
    err = failing("--manifest", str(csv), "--batch_size", "1", "--out", str(tmp_path / "s.npz"))
    assert f"error: {d / 'short.wav'}: utterance 'short' (0.020 s) is shorter than the model's receptive field" in err


def test_extract_help_lists_every_option_with_its_default(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    text = recipe_module("extract").parser().format_help()
    for option in ("--manifest CSV", "--audio_dir DIR, --audio-dir DIR", "--out NPZ", "--ark ARK",
                   "--export_model DIR, --export-model DIR", "--on_bad_file {skip,raise}, --on-bad-file {skip,raise}",
                   "--batch_size N, --batch-size N"):
        line = next(ln for ln in text.splitlines() if ln.startswith(f"  {option}"))
        entry = text[text.index(line):].split("\n  -")[0]
        assert "(default: " in entry, entry
    assert "stop at the first (default: skip)" in text and "16 on GPU (default: None)" in text


@pytest.mark.parametrize("hparams, shortest", [
    ({"min_seconds": 0.5}, 0.5),  # the flat key
    ({"prep_options": PrepOptions(min_seconds=0.5)}, 0.5),  # a run folder made before it: nested, as training read it
    ({"prep_options": {"min_seconds": 0.5}}, 0.5),  # or as a mapping
    ({"min_seconds": None, "prep_options": None}, PrepOptions.min_seconds),  # neither: PrepOptions' default
])
def test_extract_audio_dir_min_seconds_from_the_run(hparams, shortest, tmp_path):
    from ltspk.runtime.errors import DataError

    d = tmp_path / "audio"
    write_audio(d / "long.wav", 0.6)
    write_audio(d / "mid.wav", 0.3)
    rows = recipe_module("extract").audio_dir_rows(d, hparams, "skip", tmp_path / "bad.txt")
    assert sorted(r.ID for r in rows) == (["long"] if shortest > 0.3 else ["long", "mid"])
    if shortest > 0.3:
        with pytest.raises(DataError, match="shorter than"):
            recipe_module("extract").audio_dir_rows(d, hparams, "raise", tmp_path / "bad.txt")


def test_exported_classifier_applies_the_inference_chosen_on_validation(trained, tmp_path):
    """classify_batch gives the logits of the family and setting the run chose on spkid_valid (the best
    validation accuracy of its records), with the run's weights; the YAML holds no training-only argument."""
    import json
    import re

    from speechbrain.inference.speaker import EncoderClassifier

    model = tmp_path / "model"
    run("extract.py", "demo_tde.yaml", trained, *EPOCHS, "--export_model", str(model))
    text = (model / "hyperparams.yaml").read_text()
    assert not re.search(r"^\s+(alpha|mu|la_tau|margin):", text, re.M)
    valid = [r for r in json.loads((trained / "results.json").read_text())["records"]
             if r["role"] == "validation" and r["stage"] == "evaluate" and r["task"] == "speaker_id"]
    best = max(r["metrics"]["overall"] for r in valid)
    enc = EncoderClassifier.from_hparams(source=str(model), savedir=str(tmp_path / "sb"), run_opts={"device": "cpu"})
    deployed = enc.mods.classifier
    saved = torch.load(model / "classifier.ckpt", weights_only=True)
    assert torch.equal(deployed.head.weight, saved["head.weight"])  # the run's weights, not a fresh head's
    if deployed.family == "plain":
        assert any(r["metrics"]["overall"] == best and not any(r["params"].values()) for r in valid)
    else:
        assert any(r["metrics"]["overall"] == best and r["family"] == deployed.family and r["params"] == deployed.params
                   for r in valid)
    assert f"inference chosen on spkid_valid: {deployed.family}" in (model / "README.md").read_text()
    wav, _ = sf.read(next((trained.parent / "corpus" / "voxceleb1" / "wav" / "id10270").rglob("*.wav")), dtype="float32")
    wavs = torch.from_numpy(wav)[None]
    out, _, index, _ = enc.classify_batch(wavs)
    expected = deployed.head.inference_logits(enc.encode_batch(wavs), deployed.family, **deployed.params).squeeze(1)
    torch.testing.assert_close(out, expected)
    assert int(index[0]) == int(expected.argmax(-1)[0])
