"""Preparation from the real on-disk layouts: manifests, splits, trials and counts, exactly."""

import json

import pytest
from conftest import write_audio

from ltspk.data.cnceleb import prepare_cnceleb
from ltspk.data.librispeech import prepare_librispeech, read_speakers_txt
from ltspk.data.manifest import read_manifest
from ltspk.data.prepare import PrepOptions
from ltspk.data.trials import read_trials
from ltspk.data.voxceleb import list_vox2_dev, prepare_voxceleb
from ltspk.runtime.errors import DataError

NO_HOLDOUT = PrepOptions(holdout_per_speaker=0, progress=False)


def ids(rows):
    return sorted(u.ID for u in rows)


def test_voxceleb1_manifests_trials_and_split(vox1_tree, tmp_path):
    out = tmp_path / "prep"
    res = prepare_voxceleb(out, vox1_folder=vox1_tree, trial_list="O",
                           options=PrepOptions(holdout_per_speaker=1, holdout_by="utterance", progress=False))
    train, test = read_manifest(out / "train.csv"), read_manifest(out / "spkid_test.csv")
    # dev speakers only; 5 + 3 + 2 utterances, one held out per speaker
    assert {u.spk_id for u in train + test} == {"id10001", "id10002", "id10003"}
    assert len(train) + len(test) == 10 and len(test) == 3
    assert sorted(u.spk_id for u in test) == ["id10001", "id10002", "id10003"]
    u = next(r for r in train + test if r.ID == "id10001/vidA/00002")
    assert u.stop == int((0.3 + 0.05 * 2) * 16000) and u.start == 0
    assert u.duration == pytest.approx(0.4, abs=1e-4)
    ver = read_manifest(out / "verification.csv")
    assert ids(ver) == ["id10270/x6uYqmx31kE/00001", "id10270/x6uYqmx31kE/00002",
                        "id10271/8jEAjG6SegY/00001", "id10271/8jEAjG6SegY/00002"]
    trials = read_trials(out / "trials.txt")
    assert [(t.label, t.enrol, t.test) for t in trials][1] == (0, "id10270/x6uYqmx31kE/00001", "id10271/8jEAjG6SegY/00001")
    counts = json.loads((out / "counts.json").read_text())
    assert counts["counts"] == {"id10001": 4, "id10002": 2, "id10003": 1}
    assert counts["natural_counts"] == {"id10001": 5, "id10002": 3, "id10003": 2}
    assert counts["shot_groups"] == {"id10001": "few", "id10002": "few", "id10003": "few"}
    assert res.n_trials == 3 and res.too_small == []


def test_voxceleb_refuses_trials_that_overlap_training(vox1_tree, tmp_path):
    with pytest.raises(DataError, match="list_test_all2.txt.*also training speakers"):
        prepare_voxceleb(tmp_path / "p", vox1_folder=vox1_tree, trial_list="E", options=NO_HOLDOUT)


def test_voxceleb_missing_trial_utterance_is_named(vox1_tree, tmp_path):
    (vox1_tree / "meta" / "veri_test2.txt").write_text("1 id10270/x6uYqmx31kE/00001.wav id10270/nope/00009.wav\n")
    with pytest.raises(DataError, match="id10270/nope/00009"):
        prepare_voxceleb(tmp_path / "p", vox1_folder=vox1_tree, options=NO_HOLDOUT)


def test_voxceleb2_wav_preferred_and_m4a_error(tmp_path):
    vox2 = tmp_path / "vox2"
    write_audio(vox2 / "dev" / "aac" / "id00012" / "abc" / "00001.wav", 0.3)
    (vox2 / "dev" / "aac" / "id00012" / "abc" / "00001.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    entries = list_vox2_dev(vox2)
    assert [(e.id, e.path.endswith(".wav")) for e in entries] == [("id00012/abc/00001", True)]
    (vox2 / "dev" / "aac" / "id00013" / "xyz").mkdir(parents=True)
    (vox2 / "dev" / "aac" / "id00013" / "xyz" / "00001.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    with pytest.raises(DataError, match="m4a.*ffmpeg"):
        list_vox2_dev(vox2)


def test_voxceleb1_plus_2_training(vox1_tree, tmp_path):
    vox2 = tmp_path / "vox2"
    for k in range(3):
        write_audio(vox2 / "dev" / "aac" / "id00012" / "abc" / f"{k + 1:05d}.wav", 0.3, seed=k)
    prepare_voxceleb(tmp_path / "p", vox1_tree, vox2, options=NO_HOLDOUT)
    counts = json.loads((tmp_path / "p" / "counts.json").read_text())["counts"]
    assert counts == {"id10001": 5, "id00012": 3, "id10002": 3, "id10003": 2}


def test_cnceleb_layout(cn_trees, tmp_path):
    cn1, cn2 = cn_trees
    out = tmp_path / "prep"
    prepare_cnceleb(out, cn1, cn2, options=NO_HOLDOUT)
    train = read_manifest(out / "train.csv")
    assert sorted({u.spk_id for u in train}) == ["id00001", "id00002", "id10001", "id10002"]
    assert "id00001/singing-01-001" in ids(train)
    ver = {u.ID: u for u in read_manifest(out / "verification.csv")}
    # lists name .wav; the flac on disk is used
    assert ver["test/id00800-singing-01-005"].wav.endswith("eval/test/id00800-singing-01-005.flac")
    assert ver["id00800-enroll"].spk_id == "id00800"
    trials = read_trials(out / "trials.txt")
    assert [(t.label, t.enrol, t.test) for t in trials] == [
        (1, "id00800-enroll", "test/id00800-singing-01-005"),
        (0, "id00800-enroll", "test/id00801-drama-01-002"),
        (1, "id00801-enroll", "test/id00801-drama-01-002")]
    emap = json.loads((out / "enrol_map.json").read_text())
    assert emap == {"id00800-enroll": ["id00800/interview-01-001", "id00800/interview-01-002"],
                    "id00801-enroll": ["id00801/drama-01-001"]}
    assert "id00801/drama-01-001" in ver
    counts = json.loads((out / "counts.json").read_text())["counts"]
    assert counts == {"id10001": 4, "id00001": 3, "id00002": 2, "id10002": 1}


def test_cnceleb_missing_test_audio(cn_trees, tmp_path):
    cn1, _ = cn_trees
    (cn1 / "eval" / "test" / "id00801-drama-01-002.flac").unlink()
    with pytest.raises(DataError, match="id00801-drama-01-002.*not found"):
        prepare_cnceleb(tmp_path / "p", cn1, options=NO_HOLDOUT)


def test_librispeech_layout_and_generated_trials(libri_tree, tmp_path):
    spk = read_speakers_txt(libri_tree / "LibriSpeech" / "SPEAKERS.TXT")
    assert spk["237"] == {"sex": "F", "subset": "test-clean", "minutes": 8.02, "name": "Kathy Caver|with a pipe"}
    out = tmp_path / "prep"
    prepare_librispeech(out, libri_tree, n_trials=10, options=NO_HOLDOUT)
    train = read_manifest(out / "train.csv")
    assert {u.spk_id for u in train} == {"19", "26"} and len(train) == 9
    assert "19/198/19-198-0003" in ids(train)
    trials = read_trials(out / "trials.txt")
    assert len(trials) == 10 and sum(t.label for t in trials) == 5
    ver = {u.ID: u.spk_id for u in read_manifest(out / "verification.csv")}
    for t in trials:
        assert (ver[t.enrol] == ver[t.test]) == bool(t.label) and t.enrol != t.test
    prepare_librispeech(tmp_path / "again", libri_tree, n_trials=10, options=NO_HOLDOUT)
    assert (tmp_path / "again" / "trials.txt").read_text() == (out / "trials.txt").read_text()


def test_bad_files_reported_and_skipped(vox1_tree, tmp_path):
    bad = vox1_tree / "wav" / "id10002" / "vidC" / "00002.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    out = tmp_path / "p"
    res = prepare_voxceleb(out, vox1_folder=vox1_tree, options=NO_HOLDOUT)
    assert [p for p, _ in res.bad_files] == [str(bad)]
    assert str(bad) in (out / "bad_files.txt").read_text()
    assert json.loads((out / "counts.json").read_text())["counts"]["id10002"] == 2
    with pytest.raises(DataError, match="00002.wav.*unreadable"):
        prepare_voxceleb(tmp_path / "q", vox1_folder=vox1_tree,
                         options=PrepOptions(holdout_per_speaker=0, progress=False, on_bad_file="raise"))


def test_validation_split(vox1_tree, tmp_path):
    out = tmp_path / "prep"
    prepare_voxceleb(out, vox1_folder=vox1_tree,
                     options=PrepOptions(holdout_per_speaker=1, valid_per_speaker=1, holdout_by="utterance",
                                         progress=False))
    train, test, valid = (read_manifest(out / f) for f in ("train.csv", "spkid_test.csv", "spkid_valid.csv"))
    # natural 5, 3, 2 -> test 1 each -> 4, 2, 1 -> validation 1 where one is left to train
    assert sorted(u.spk_id for u in valid) == ["id10001", "id10002"]
    assert json.loads((out / "counts.json").read_text())["counts"] == {"id10001": 3, "id10002": 1, "id10003": 1}
    assert not ({u.ID for u in valid} & {u.ID for u in train + test})


def test_voxceleb1_in_flac_is_read(vox1_tree, tmp_path):
    import soundfile as sf

    for wav in sorted((vox1_tree / "wav").rglob("*.wav")):
        audio, sr = sf.read(wav)
        sf.write(wav.with_suffix(".flac"), audio, sr)
        if wav.parent.name != "vidA":
            wav.unlink()  # vidA keeps both: the .wav is the one read
    out = tmp_path / "p"
    prepare_voxceleb(out, vox1_folder=vox1_tree, trial_list="O", options=NO_HOLDOUT)
    rows = read_manifest(out / "train.csv") + read_manifest(out / "verification.csv")
    assert len(rows) == 5 + 3 + 2 + 4 and len({u.ID for u in rows}) == len(rows)
    by_id = {u.ID: u.wav for u in rows}
    assert by_id["id10001/vidA/00001"].endswith(".wav") and by_id["id10002/vidC/00001"].endswith(".flac")


def test_voxceleb1_alone_needs_no_vox2_folder(vox1_tree, tmp_path):
    from pathlib import Path

    import speechbrain as sb

    from ltspk.data.corpora import options_from_hparams
    from ltspk.train.hparams import load_hparams

    hp = Path(__file__).resolve().parents[1] / "hparams" / "voxceleb_aam.yaml"
    _, _, ov = sb.parse_arguments([str(hp), "--data_folder", str(vox1_tree), "--train_sets", "[vox1_dev]"])
    corpus, data, _, _, opts = options_from_hparams(load_hparams(hp, ov))
    assert (corpus, data) == ("voxceleb", str(vox1_tree)) and opts == {"vox2_folder": None, "train_sets": ["vox1_dev"],
                                                                  "trial_list": "O"}
    prepare_voxceleb(tmp_path / "p", vox1_tree, opts.get("vox2_folder"), opts["train_sets"], "O", NO_HOLDOUT)
    assert len(read_manifest(tmp_path / "p" / "train.csv")) == 10
    with pytest.raises(DataError, match=r"vox2_dev training needs the VoxCeleb2 root.*--train_sets \[vox1_dev\]"):
        prepare_voxceleb(tmp_path / "q", vox1_tree, None, ["vox2_dev"], "O", NO_HOLDOUT)
