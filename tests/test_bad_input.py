"""Bad input gets a clear error naming the file and what is wrong."""

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import write_audio
from speechbrain.dataio.encoder import CategoricalEncoder

from ltspk.data.pipeline import class_counts, crop_pipeline, full_pipeline, label_encoder
from ltspk.data.trials import generate_trials, read_cnceleb_trials, read_voxceleb_trials
from ltspk.embedding.tables import load_embeddings, save_embeddings
from ltspk.runtime.errors import DataError


def test_label_encoder_mismatch(tmp_path):
    enc = CategoricalEncoder()
    for s in ("a", "b"):
        enc.add_label(s)
    assert class_counts(enc, {"a": 3, "b": 1}, "counts.json") == [3, 1]
    with pytest.raises(DataError, match="counts.json: label encoder and training counts disagree: 1 speaker"):
        class_counts(enc, {"a": 3, "c": 1}, "counts.json")


def test_label_encoder_is_saved_once_and_reloaded(tmp_path):
    csv = tmp_path / "train.csv"
    csv.write_text("ID,duration,wav,start,stop,spk_id\nu1,1,/a.wav,0,10,s2\nu2,1,/b.wav,0,10,s1\n")
    enc = label_encoder(tmp_path / "le.txt", csv)
    assert enc.lab2ind == {"s2": 0, "s1": 1}
    csv.write_text("ID,duration,wav,start,stop,spk_id\nu1,1,/a.wav,0,10,s9\n")
    assert label_encoder(tmp_path / "le.txt", csv).lab2ind == {"s2": 0, "s1": 1}


def test_nan_audio_and_short_audio_in_the_pipelines(tmp_path):
    bad = tmp_path / "nan.wav"
    x = np.zeros(1600, dtype=np.float32)
    x[10] = np.nan
    sf.write(bad, x, 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="nan.wav: audio holds NaN"):
        full_pipeline(16000)(str(bad), 0, 1600)
    short = write_audio(tmp_path / "short.wav", seconds=0.1, sr=8000)  # shorter than the crop, other rate
    sig = crop_pipeline(16000, 0.5)(str(short), 0, 800)
    assert sig.shape == (8000,)  # resampled to 16 kHz and repeated to fill 0.5 s


def test_trial_list_errors(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("1 a/b/1.wav a/b/2.wav\n2 a/b/1.wav c/d/1.wav\n")
    with pytest.raises(DataError, match="t.txt: line 2: label must be 0 or 1"):
        read_voxceleb_trials(f)
    f.write_text("1 a/b/1.wav\n")
    with pytest.raises(DataError, match="line 1: expected"):
        read_voxceleb_trials(f)
    f.write_text("\n")
    with pytest.raises(DataError, match="empty"):
        read_cnceleb_trials(f)
    with pytest.raises(ValueError, match=">= 2 speakers"):
        generate_trials({"u": "s"}, 4)


def test_embedding_files_refuse_pickles_and_bad_shapes(tmp_path):
    save_embeddings(tmp_path / "e.npz", ["a", "b"], np.eye(2))
    ids, m = load_embeddings(tmp_path / "e.npz")
    assert ids == ["a", "b"] and m.dtype == np.float32
    np.savez(tmp_path / "p.npz", ids=np.array([{"x": 1}], dtype=object), embeddings=np.eye(1))
    with pytest.raises(DataError, match="p.npz: not an ltspk embedding file"):
        load_embeddings(tmp_path / "p.npz")
    np.savez(tmp_path / "s.npz", ids=np.array(["a"]), embeddings=np.eye(2))
    with pytest.raises(DataError, match="1 ids but embeddings of shape"):
        load_embeddings(tmp_path / "s.npz")


def test_audio_folder_lists_bad_files_and_refuses_ambiguous_ids(tmp_path):
    from ltspk.data.audio import refuse_bad_files
    from ltspk.data.audio_folder import folder_rows

    d = tmp_path / "audio"
    write_audio(d / "good.wav", 0.3)
    write_audio(d / "sub" / "x.flac", 0.3, seed=1)
    x = np.full(4800, 0.1, dtype=np.float32)
    x[100] = np.nan
    sf.write(d / "nan.wav", x, 16000, subtype="FLOAT")
    sf.write(d / "silent.wav", np.zeros(4800, dtype=np.float32), 16000)
    sf.write(d / "nosamples.wav", np.zeros(0, dtype=np.float32), 16000)
    (d / "zero.wav").write_bytes(b"")
    (d / "junk.wav").write_bytes(b"not audio at all")
    write_audio(d / "short.wav", 0.02)
    (d / "loop.wav").symlink_to(d / "loop.wav")
    (d / "broken.wav").symlink_to(tmp_path / "gone.wav")
    rows, bad = folder_rows(d, workers=2, progress=False)
    assert [(u.ID, u.spk_id) for u in rows] == [("good", "good"), ("sub/x", "sub")]
    why = {p.rsplit("/", 1)[1]: reason for p, reason in bad}
    assert why["nan.wav"] == "audio holds NaN or infinite samples"
    assert why["silent.wav"] == "audio is entirely silent (all samples zero)"
    assert why["nosamples.wav"] == "empty audio file (0 samples)" and why["zero.wav"] == "empty file (0 bytes)"
    assert why["junk.wav"].startswith("unreadable audio") and why["short.wav"] == "shorter than min_seconds=0.1 s (0.020 s)"
    assert why["loop.wav"] == "symbolic-link loop" and why["broken.wav"].startswith("broken symbolic link")
    refuse_bad_files(bad, "skip")
    with pytest.raises(DataError, match=r"broken.wav: broken symbolic link .* \(8 bad file\(s\) in all"):
        refuse_bad_files(bad, "raise")
    write_audio(d / "good.flac", 0.3)  # a second file for the ID 'good'
    with pytest.raises(DataError, match=r"two files map to one utterance ID 'good': \S+good.flac and \S+good.wav"):
        folder_rows(d, workers=2, progress=False)
    (tmp_path / "self").symlink_to(tmp_path / "self")
    with pytest.raises(DataError, match="self: symbolic-link loop"):
        folder_rows(tmp_path / "self", progress=False)


def test_audio_shorter_than_the_receptive_field_is_named(tmp_path):
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    from speechbrain.processing.features import InputNormalization

    from ltspk.data.manifest import Utterance
    from ltspk.embedding.cache import embed_manifest
    from ltspk.embedding.embedders import ModuleEmbedder

    torch.manual_seed(0)
    modules = {"compute_features": Fbank(n_mels=20), "mean_var_norm": InputNormalization(norm_type="sentence"),
               "embedding_model": ECAPA_TDNN(20, channels=[16, 16, 16, 16, 48], attention_channels=8, lin_neurons=8)}
    embedder = ModuleEmbedder(modules)
    ok, tiny = write_audio(tmp_path / "ok.wav", 0.2), write_audio(tmp_path / "tiny.wav", 0.02)
    rows = [Utterance("ok", 0.2, str(ok), 0, 3200, "s"), Utterance("tiny", 0.02, str(tiny), 0, 320, "s")]
    h = {"sample_rate": 16000, "eval_batch_size": 1}
    with pytest.raises(DataError, match=r"tiny.wav: utterance 'tiny' \(0.020 s\) is shorter than the model's "
                                        "receptive field"):
        embed_manifest(embedder, None, h, False, rows=rows)
    ids, emb = embed_manifest(embedder, None, h, False, rows=rows[:1])
    assert ids == ["ok"] and emb.shape == (1, 8)
