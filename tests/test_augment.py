"""Augmentation as SpeechBrain's recipe does it (ltspk.train.augment): SpeechBrain's Augmenter over
AddNoise / AddReverb from folders the test writes, and the data-free DropFreq, DropChunk and
SpeedPerturb; labels replicated in the order of the augmented batch; the log says what is off."""

import csv

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import write_audio
from speechbrain.augment.time_domain import DropChunk, DropFreq, SpeedPerturb

from ltspk.runtime.errors import DataError
from ltspk.train.augment import build_augmenter, summary, write_augment_csv
from ltspk.train.layering import hparams_text, merge_text


def data_free(speeds=(90, 100, 110)):
    """The recipe's DropFreq and DropChunk (train_ecapa_tdnn.yaml's values) and SpeedPerturb."""
    return [DropFreq(drop_freq_low=0, drop_freq_high=1, drop_freq_count_low=1, drop_freq_count_high=3,
                     drop_freq_width=0.05),
            DropChunk(drop_length_low=1000, drop_length_high=2000, drop_count_low=1, drop_count_high=5),
            SpeedPerturb(orig_freq=16000, speeds=list(speeds))]


@pytest.fixture
def folders(tmp_path):
    """A noise folder (wav and flac, one long file, one stereo and one 8 kHz file to leave out) and an RIR folder."""
    noise, rir = tmp_path / "noise", tmp_path / "rir"
    write_audio(noise / "babble" / "n1.wav", 1.0, seed=1)
    write_audio(noise / "music" / "n2.flac", 0.5, seed=2)
    write_audio(noise / "long.wav", 2.5, seed=3)
    sf.write(noise / "stereo.wav", np.zeros((1600, 2), dtype=np.float32), 16000)
    write_audio(noise / "narrow.wav", 0.5, sr=8000, seed=4)
    for k in range(2):
        t = np.arange(800) / 16000.0
        rir.mkdir(exist_ok=True)
        sf.write(rir / f"room{k}.wav", (np.exp(-t * 60) * (np.arange(800) % 7 == 0)).astype(np.float32), 16000)
    return noise, rir


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_noise_csv_from_a_folder(folders, tmp_path):
    noise, _ = folders
    n, skipped = write_augment_csv(noise, tmp_path / "out" / "noise.csv", 16000, max_seconds=1.0)
    rows = read_csv(tmp_path / "out" / "noise.csv")
    assert list(rows[0]) == ["ID", "duration", "wav", "wav_format", "wav_opts"]  # SpeechBrain's augmentation CSV
    # babble/n1 (1.0 s), long.wav (2.5 s) as ceil(2.5 / 1) = 3 even pieces of ceil(40000 / 3) = 13334 frames, music/n2 (0.5 s)
    assert n == 5 and [r["ID"] for r in rows] == ["babble_n1", "long__0000", "long__0001", "long__0002", "music_n2"]
    assert [float(r["duration"]) for r in rows] == pytest.approx([1.0, 13334 / 16000, 13334 / 16000, 13332 / 16000, 0.5])
    assert [r["wav_format"] for r in rows] == ["wav", "wav", "wav", "wav", "flac"]
    pieces = [sf.read(r["wav"], dtype="float32")[0] for r in rows[1:4]]
    whole = sf.read(noise / "long.wav", dtype="float32")[0]
    assert np.array_equal(np.concatenate(pieces), whole)  # the pieces are the file, cut
    assert str(tmp_path / "out") in rows[1]["wav"] and rows[0]["wav"] == str((noise / "babble" / "n1.wav").resolve())
    assert sorted((p.split("/")[-1], why.split(" ")[1]) for p, why in skipped) == [("narrow.wav", "rate"),
                                                                                  ("stereo.wav", "channels")]
    assert (noise / "long.wav").is_file() and (noise / "stereo.wav").is_file()  # the user's folder is only read


def test_a_folder_without_audio_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no audio files"):
        write_augment_csv(tmp_path / "empty", tmp_path / "noise.csv")
    with pytest.raises(DataError, match="augmentation folder not found"):
        build_augmenter(noise_folder=tmp_path / "absent", csv_folder=tmp_path)


def test_without_folders_the_data_free_parts_stay_on_and_the_log_says_why():
    aug = build_augmenter(data_free(), noise_folder=None, rir_folder=None, csv_folder=None)
    assert [type(a).__name__ for a in aug.augmentations.values()] == ["DropFreq", "DropChunk", "SpeedPerturb"]
    assert aug.parallel_augment and aug.concat_original and aug.min_augmentations == aug.max_augmentations == 3
    text = summary(aug)  # what training logs when it starts
    assert "AddNoise OFF: no noise_folder given" in text and "AddReverb OFF: no rir_folder given" in text
    assert "x4" in summary(aug) and len(aug.ltspk_off) == 2
    assert build_augmenter([None]) is None  # nothing left: no Augmenter


def test_with_folders_every_augmenter_runs_and_labels_follow_the_copies(folders, tmp_path):
    noise, rir = folders
    torch.manual_seed(0)
    aug = build_augmenter(data_free(speeds=(90, 110)), noise_folder=noise, rir_folder=rir, csv_folder=tmp_path / "aug")
    names = [type(a).__name__ for a in aug.augmentations.values()]
    assert names == ["AddNoise", "AddReverb", "DropFreq", "DropChunk", "SpeedPerturb"]  # the recipe's four + speed
    assert len(read_csv(tmp_path / "aug" / "noise.csv")) == 3 and len(read_csv(tmp_path / "aug" / "rir.csv")) == 2
    assert not aug.ltspk_off
    wavs = torch.randn(4, 8000) * 0.1
    lens = torch.tensor([1.0, 1.0, 0.75, 0.5])
    labels = torch.tensor([3, 1, 2, 0])
    out, out_lens = aug(wavs, lens)
    assert out.shape[0] == 4 * 6 and out_lens.shape == (24,)  # originals + 5 copies, each of the whole batch
    assert torch.equal(aug.replicate_labels(labels), labels.repeat(6))
    width = wavs.shape[1]
    assert torch.equal(out[:4, :width], wavs)  # the originals first, untouched
    for k in range(1, 6):
        block = out[4 * k:4 * (k + 1)]
        assert not torch.equal(block[:, :width], wavs)  # every copy is changed ...
        # ... and row j of a copy is utterance j: its relative length is the original's (up to padding)
        assert torch.allclose(out_lens[4 * k:4 * (k + 1)] / out_lens[4 * k], lens / lens[0], atol=0.01)


AUGMENT_YAML = """
wav_augment: !apply:ltspk.train.augment.build_augmenter
    noise_folder: null
    rir_folder: null
    augmentations:
        - !new:speechbrain.augment.time_domain.DropFreq {drop_freq_low: 0, drop_freq_high: 1}
        - !new:speechbrain.augment.time_domain.DropChunk
            drop_length_low: 1000
            drop_length_high: 2000
            drop_count_high: 5
        - !new:speechbrain.augment.time_domain.SpeedPerturb {orig_freq: 16000, speeds: [90, 100, 110]}
"""


def test_a_training_run_with_the_augmenter_keeps_labels_aligned(tmp_path_factory, monkeypatch):
    import speechbrain as sb
    from test_resume_exact import ROOT, train

    from ltspk.train.brain import SpeakerBrain

    runs = tmp_path_factory.getbasetemp() / "tiny_runs"  # corpus and preparation shared with other modules' runs
    runs.mkdir(exist_ok=True)
    yaml = runs / "demo_aam_augment.yaml"
    yaml.write_text(merge_text(hparams_text(ROOT / "hparams" / "demo_aam.yaml"), AUGMENT_YAML))
    seen = []
    forward = SpeakerBrain.compute_forward

    def spy(self, batch, stage):
        out = forward(self, batch, stage)
        if stage == sb.Stage.TRAIN:
            seen.append((batch.spk_id_encoded.data.reshape(-1).cpu(), out[1].cpu(), out[0].shape[0]))
        return out
    monkeypatch.setattr(SpeakerBrain, "compute_forward", spy)
    out = train(runs, "augment", yaml_name=str(yaml), epochs=1)
    assert seen
    for labels, replicated, rows in seen:  # originals + DropFreq, DropChunk, SpeedPerturb copies
        assert rows == 4 * len(labels) and torch.equal(replicated, labels.repeat(4))
    log = (out / "log.txt").read_text()
    assert "augmentation on: DropFreq, DropChunk, SpeedPerturb; each training batch becomes x4" in log
    assert log.count("augmentation on:") == 1  # once, when training starts
    assert "AddNoise OFF: no noise_folder given" in log and "AddReverb OFF: no rir_folder given" in log
