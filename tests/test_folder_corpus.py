"""Speaker-folder corpora on trees the tests build, generated trials, and a real DSPSpeech-20 run."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import write_audio

from ltspk.data.folder import list_speaker_folders, prepare_folder, read_user_trials
from ltspk.data.manifest import read_manifest
from ltspk.data.prepare import PrepOptions
from ltspk.data.trials import generate_trials, read_trials
from ltspk.runtime.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
OPTS = PrepOptions(holdout_per_speaker=0, progress=False, workers=2)


def tree(root, layout, seconds=0.3):
    """layout: {speaker: [relative file names]}; files get distinct tones."""
    for i, (spk, files) in enumerate(layout.items()):
        (root / spk).mkdir(parents=True, exist_ok=True)
        for j, rel in enumerate(files):
            if rel.endswith(".ogg"):
                (root / spk / rel).parent.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng(j)
                sf.write(root / spk / rel, 0.1 * rng.standard_normal(int(16000 * seconds)), 16000, format="OGG",
                         subtype="VORBIS")
            else:
                write_audio(root / spk / rel, seconds, seed=100 * i + j)
    return root


def test_layout_nested_sessions_mixed_extensions_and_non_audio(tmp_path):
    root = tree(tmp_path / "c", {"alice": ["s1/a.wav", "s1/b.flac", "s2/c.ogg"], "bob": ["x.wav"]})
    (root / "alice" / "notes.txt").write_text("not audio")
    (root / "bob" / ".hidden.wav").write_bytes(b"")
    (root / "carol").mkdir()  # a speaker folder with no audio: left out with a warning
    entries, sessions, empty = list_speaker_folders(root)
    assert [e.id for e in entries] == ["alice/s1/a", "alice/s1/b", "alice/s2/c", "bob/x"]
    assert sessions == {"alice/s1/a": "s1", "alice/s1/b": "s1", "alice/s2/c": "s2", "bob/x": None}
    assert empty == ["carol"] and {e.spk_id for e in entries} == {"alice", "bob"}


def test_session_from_the_file_name(tmp_path):
    root = tree(tmp_path / "c", {"s01": ["s01-03-01.flac", "s01-04-02.flac"]})
    _, sessions, _ = list_speaker_folders(root, r"^[^-]+-(?P<session>[^-]+)-")
    assert sessions == {"s01/s01-03-01": "03", "s01/s01-04-02": "04"}
    with pytest.raises(DataError, match="named group"):
        list_speaker_folders(root, r"^[^-]+-([^-]+)-")


def test_colliding_stems_no_speakers_no_audio_symlink_loop(tmp_path):
    root = tree(tmp_path / "c", {"a": ["u.wav", "u.flac"]})
    with pytest.raises(DataError, match=r"two files map to one utterance ID 'a/u'.*u.flac"):
        list_speaker_folders(root)
    (tmp_path / "flat").mkdir()
    write_audio(tmp_path / "flat" / "x.wav")
    with pytest.raises(DataError, match="no speaker folders"):
        list_speaker_folders(tmp_path / "flat")
    (tmp_path / "empty" / "spk").mkdir(parents=True)
    with pytest.raises(DataError, match="no audio files"):
        list_speaker_folders(tmp_path / "empty")
    loop = tree(tmp_path / "l", {"a": ["s/u.wav"]})
    os.symlink(loop / "a", loop / "a" / "s" / "back")
    with pytest.raises(DataError, match="symbolic-link loop"):
        list_speaker_folders(loop)


def _corpus(tmp_path, speakers=6, per=6, sessions=3):
    layout = {f"spk{i}": [f"sess{j % sessions}/u{j}.wav" for j in range(per)] for i in range(speakers)}
    return tree(tmp_path / "c", layout)


def test_generated_trials_are_disjoint_from_training_and_balanced(tmp_path):
    root = _corpus(tmp_path)
    prepare_folder(tmp_path / "p", root, OPTS, verification_speakers=2, n_trials=40)
    train = read_manifest(tmp_path / "p" / "train.csv")
    trials = read_trials(tmp_path / "p" / "trials.txt")
    trial_spk = {i.split("/")[0] for t in trials for i in (t.enrol, t.test)}
    assert len(trial_spk) == 2 and not trial_spk & {u.spk_id for u in train}  # held out, never trained on
    assert sum(t.label for t in trials) == 20 and len(trials) == 40
    assert all(os.path.isabs(u.wav) for u in train)  # runs can be evaluated from any directory


def test_user_trial_lists_both_formats_and_errors(tmp_path):
    root = _corpus(tmp_path)
    known = {f"spk{i}/sess{j % 3}/u{j}" for i in range(6) for j in range(6)}
    vox = tmp_path / "vox.txt"
    vox.write_text("1 spk0/sess0/u0.wav spk0/sess1/u1.wav\n0 spk0/sess0/u0.wav spk1/sess0/u0.wav\n")
    kaldi = tmp_path / "kaldi.txt"
    kaldi.write_text("spk0/sess0/u0 spk0/sess1/u1 target\nspk0/sess0/u0 spk1/sess0/u0 nontarget\n")
    assert read_user_trials(vox, known) == read_user_trials(kaldi, known)
    bad = tmp_path / "bad.txt"
    bad.write_text("spk0/sess0/u0 spk0/sess1/u1 maybe\n")
    with pytest.raises(DataError, match="line 1: expected"):
        read_user_trials(bad, known)
    outside = tmp_path / "outside.txt"
    outside.write_text("1 spk0/sess0/u0 elsewhere/x.wav\n0 spk0/sess0/u0 spk1/sess0/u0\n")
    with pytest.raises(DataError, match="not in the corpus folder, e.g. elsewhere/x"):
        read_user_trials(outside, known)
    only_target = tmp_path / "targets.txt"
    only_target.write_text("1 spk0/sess0/u0 spk0/sess1/u1\n1 spk1/sess0/u0 spk1/sess1/u1\n")
    with pytest.raises(DataError, match="2 target and 0 non-target"):
        prepare_folder(tmp_path / "p", root, OPTS, trials=only_target)  # at preparation, before any training
    # a user list's speakers are left out of training
    prepare_folder(tmp_path / "p2", root, OPTS, trials=vox)
    assert {u.spk_id for u in read_manifest(tmp_path / "p2" / "train.csv")} == {"spk2", "spk3", "spk4", "spk5"}


def test_trial_lists_with_one_label_are_refused_in_both_formats(tmp_path):
    known = {"a/1", "a/2", "b/1"}
    lists = {"vox_targets": "1 a/1.wav a/2.wav\n1 a/2 a/1\n", "vox_nontargets": "0 a/1 b/1\n0 a/2 b/1.flac\n",
             "kaldi_targets": "a/1 a/2 target\na/2 a/1 target\n", "kaldi_nontargets": "a/1 b/1 nontarget\n"}
    for name, text in lists.items():
        (tmp_path / name).write_text(text)
        n = text.count("\n")
        counts = f"{n} target and 0 non-target" if name.endswith("_targets") else f"0 target and {n} non-target"
        with pytest.raises(DataError, match=f"{name}: the trial list has {counts} trials: verification needs both"):
            read_user_trials(tmp_path / name, known)  # read first, before the corpus is probed


def test_bad_files_and_empty_speakers_are_listed_before_training(tmp_path, caplog):
    root = _corpus(tmp_path, speakers=3, per=3)
    (root / "spk0" / "sess0" / "zero.wav").write_bytes(b"")
    (root / "spk1" / "junk.flac").write_bytes(b"not audio")
    sf.write(root / "spk2" / "nosamples.wav", np.zeros(0, dtype=np.float32), 16000)
    (root / "carol" / "notes").mkdir(parents=True)  # a speaker folder without audio: left out with a warning
    prepare_folder(tmp_path / "p", root, OPTS)
    listed = dict(line.split("\t") for line in (tmp_path / "p" / "bad_files.txt").read_text().splitlines())
    assert {Path(p).name: why for p, why in listed.items()} == {
        "zero.wav": "empty file (0 bytes)", "nosamples.wav": "empty audio file (0 samples)",
        "junk.flac": listed[str(root / "spk1" / "junk.flac")]}
    assert listed[str(root / "spk1" / "junk.flac")] == "unreadable audio (Format not recognised.)"
    assert len(read_manifest(tmp_path / "p" / "train.csv")) == 9
    assert "carol" in caplog.text and json.loads((tmp_path / "p" / "counts.json").read_text())["meta"][
        "speakers_without_audio"] == ["carol"]
    with pytest.raises(DataError, match=r"zero.wav: empty file \(0 bytes\) \(3 bad file\(s\) in all"):
        prepare_folder(tmp_path / "p2", root, PrepOptions(holdout_per_speaker=0, progress=False, on_bad_file="raise"))


def test_short_files_are_listed_not_trained_on(tmp_path):
    root = _corpus(tmp_path, speakers=3, per=3)
    write_audio(root / "spk0" / "sess0" / "tiny.wav", seconds=0.02)
    prepare_folder(tmp_path / "p", root, OPTS)
    assert "tiny.wav\tshorter than min_seconds=0.1 s (0.020 s)" in (tmp_path / "p" / "bad_files.txt").read_text()
    assert "spk0/sess0/tiny" not in {u.ID for u in read_manifest(tmp_path / "p" / "train.csv")}


def test_imbalance_target_below_the_natural_one_is_refused(tmp_path):
    layout = {"big": [f"u{j}.wav" for j in range(8)], "small": ["u0.wav"], "mid": ["u0.wav", "u1.wav"]}
    root = tree(tmp_path / "c", layout)
    with pytest.raises(DataError, match="already more imbalanced"):
        prepare_folder(tmp_path / "p", root, PrepOptions(holdout_per_speaker=0, imbalance_factor=2, progress=False))


def test_generate_trials_by_hand_properties():
    speaker_of = {f"s{s}/u{u}": f"s{s}" for s in range(5) for u in range(4)}
    session_of = {k: int(k[-1]) % 2 for k in speaker_of}  # two sessions per speaker
    trials = generate_trials(speaker_of, 60, seed=3, session_of=session_of)
    assert len(trials) == 60 and sum(t.label for t in trials) == 30
    keys = {tuple(sorted((t.enrol, t.test))) for t in trials}
    assert len(keys) == 60 and all(t.enrol != t.test for t in trials)
    assert all((speaker_of[t.enrol] == speaker_of[t.test]) == bool(t.label) for t in trials)
    cross = [session_of[t.enrol] != session_of[t.test] for t in trials if t.label]
    assert sum(cross) == 20  # all 4 cross-session pairs of each speaker first, then 10 same-session ones
    few = generate_trials(speaker_of, 20, seed=3, session_of=session_of)
    assert all(session_of[t.enrol] != session_of[t.test] for t in few if t.label)  # cross-session where possible
    # asking for more target pairs than exist gives all of them, not an endless loop
    assert sum(t.label for t in generate_trials({"a/1": "a", "a/2": "a", "b/1": "b"}, 10)) == 1


def test_real_speech_end_to_end(dspspeech20, tmp_path):
    """DSPSpeech-20 (real 8 kHz speech): 7 speakers x 20 recordings linked into a speaker-folder
    corpus, prepared, trained one short epoch with folder_tde.yaml, evaluated."""
    import json
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    for spk in sorted(p.name for p in dspspeech20.iterdir() if p.is_dir())[:7]:
        (corpus / spk).mkdir(parents=True)
        for f in sorted((dspspeech20 / spk).glob("*.flac"))[:20]:
            os.symlink(f, corpus / spk / f.name)
    out = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "recipes" / "train.py"), str(ROOT / "hparams" / "folder_tde.yaml"),
           "--data_folder", str(corpus), "--output_folder", str(out), "--number_of_epochs", "1", "--noprogressbar",
           "--verification_speakers", "3", "--n_trials", "200", "--imbalance_factor", "null",
           "--holdout_per_speaker", "2", "--valid_per_speaker", "1",
           "--train_dataloader_options", "{batch_size: 16, num_workers: 0, drop_last: True, shuffle: True}"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    head = {(x["task"], x["family"]): x["metrics"] for x in res["records"] if x["role"] == "headline"}
    assert head[("verification", "cosine")]["n_trials"] == 200 and head[("speaker_id", "plain")]["n"] == 8
    counts = json.loads((out / "prepared" / "counts.json").read_text())
    assert counts["corpus"] == "folder" and len(counts["meta"]["verification_speakers"]) == 3
