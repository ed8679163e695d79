"""Bad input gets a clear error naming the file and what is wrong."""

import numpy as np
import pytest
import soundfile as sf
from conftest import write_audio
from speechbrain.dataio.encoder import CategoricalEncoder

from ltspk.data.pipeline import class_counts, crop_pipeline, full_pipeline, label_encoder
from ltspk.data.trials import generate_trials, read_cnceleb_trials, read_voxceleb_trials
from ltspk.embeddings_io import load_embeddings, save_embeddings
from ltspk.errors import DataError


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
