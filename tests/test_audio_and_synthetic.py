"""Audio probing and loading (real speech from FSDD, stereo), atomic writes, and the synthetic demo corpus."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from ltspk.data.audio import load, probe
from ltspk.data.manifest import read_manifest
from ltspk.data.prepare import PrepOptions
from ltspk.data.synthetic import make_corpus
from ltspk.data.voxceleb import prepare_voxceleb
from ltspk.runtime.atomic import atomic_open
from ltspk.runtime.errors import DataError


def test_fsdd_resampled_to_16k(fsdd):
    f = fsdd / "0_george_0.wav"
    info = probe(f)
    assert info.samplerate == 8000 and info.channels == 1
    wav = load(f, sample_rate=16000)
    assert wav.dtype == torch.float32 and abs(wav.numel() - 2 * info.frames) <= 2
    assert wav.abs().max() > 0.01


def test_probe_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        probe(tmp_path / "nope.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    with pytest.raises(DataError, match="junk.wav: unreadable audio"):
        probe(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(DataError, match="empty"):
        probe(tmp_path / "empty.wav")
    sf.write(tmp_path / "silent.wav", np.zeros(100, dtype=np.float32), 16000)
    with pytest.raises(DataError, match="silent"):
        probe(tmp_path / "silent.wav", verify_samples=True)


def test_stereo_is_averaged_in_the_pipelines(tmp_path):
    from ltspk.data.pipeline import crop_pipeline, full_pipeline

    left = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)  # a ramp: each crop's offset is recoverable
    right = np.full(1600, -0.25, dtype=np.float32)
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    mean = torch.from_numpy((left + right) / 2)
    full = full_pipeline(16000)(str(tmp_path / "st.wav"), 0, 1600)
    assert full.shape == (1600,) and torch.allclose(full, mean, atol=1e-6)
    torch.manual_seed(0)
    crop = crop_pipeline(16000, 0.05)(str(tmp_path / "st.wav"), 0, 1600)  # 800 of the 1600 samples
    offset = int((mean - crop[0]).abs().argmin())
    assert crop.shape == (800,) and torch.allclose(crop, mean[offset : offset + 800], atol=1e-6)
    assert torch.allclose(load(tmp_path / "st.wav"), mean, atol=1e-6)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    import os

    with atomic_open(tmp_path / "new.txt") as f:
        f.write("x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "new.txt").stat().st_mode & 0o777 == 0o666 & ~mask  # as open() would create it


def test_synthetic_corpus_is_long_tailed_and_prepares(tmp_path):
    root = make_corpus(tmp_path, n_train_speakers=6, n_test_speakers=3, max_utts=12, imbalance=4,
                       test_utts=3, min_seconds=0.4, max_seconds=0.6, n_trials=8, progress=False)
    out = tmp_path / "prep"
    prepare_voxceleb(out, root, options=PrepOptions(holdout_per_speaker=1, holdout_by="utterance", progress=False))
    counts = json.loads((out / "counts.json").read_text())
    # 12 * 4^(-i/5) = 12, 9.1, 6.9, 5.2, 3.9 -> 4 (floor 3, min 4), 3 -> 4; minus one held out
    assert counts["natural_counts"] == {"id10001": 12, "id10002": 9, "id10003": 6, "id10004": 5,
                                        "id10005": 4, "id10006": 4}
    assert sum(counts["counts"].values()) == 40 - 6
    assert {u.spk_id for u in read_manifest(out / "verification.csv")} == {"id10270", "id10271", "id10272"}
    assert "SYNTHETIC" in (root / "README.txt").read_text()
    a = sf.read(next((root / "wav" / "id10001").glob("*/00001.wav")))[0]
    assert np.isfinite(a).all() and a.std() > 0.01


def test_silent_file_stops_training_with_its_name_but_a_silent_crop_does_not(tmp_path):
    from ltspk.data.pipeline import crop_pipeline

    silent, quiet_start = tmp_path / "silent.wav", tmp_path / "quiet_start.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    x = np.zeros(32000, dtype=np.float32)
    x[-100:] = 0.5  # speech only at the very end: most crops are all zero
    sf.write(quiet_start, x, 16000)
    crop = crop_pipeline(16000, 0.5)
    with pytest.raises(DataError, match="silent.wav: all samples are zero"):
        crop(str(silent), 0, 16000)
    torch.manual_seed(0)
    assert crop(str(quiet_start), 0, 8000).abs().sum() == 0  # an all-zero crop of a file that is not silent
