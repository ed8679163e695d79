"""A prepared folder is replaced whole and reused only with the settings it was made with."""

import json

import pytest

from ltspk.data.prepare import PrepOptions
from ltspk.data.prepared import FINGERPRINT, check_prepared, ensure_prepared
from ltspk.runtime.errors import DataError

OPTS = PrepOptions(holdout_per_speaker=1, progress=False, workers=1)
CORPUS = {"train_sets": ["vox1_dev"], "trial_list": "O"}


def test_prepared_once_then_reused(vox1_tree, tmp_path):
    out = tmp_path / "prep"
    ensure_prepared("voxceleb", vox1_tree, out, OPTS, CORPUS)
    assert (out / FINGERPRINT).is_file() and (out / "counts.png").is_file()
    mtime = (out / "train.csv").stat().st_mtime_ns
    ensure_prepared("voxceleb", vox1_tree, out, OPTS, CORPUS)
    assert (out / "train.csv").stat().st_mtime_ns == mtime  # reused, not redone


def test_other_options_or_data_folder_are_refused(vox1_tree, tmp_path):
    out = tmp_path / "prep"
    ensure_prepared("voxceleb", vox1_tree, out, OPTS, CORPUS)
    with pytest.raises(DataError, match=r"holdout_per_speaker: 1 \(prepared\) vs 2 \(now\)"):
        check_prepared(out, "voxceleb", vox1_tree, PrepOptions(holdout_per_speaker=2), CORPUS)
    with pytest.raises(DataError, match="data_folder"):
        check_prepared(out, "voxceleb", tmp_path, OPTS, CORPUS)
    with pytest.raises(DataError, match="corpus_options.trial_list"):
        check_prepared(out, "voxceleb", vox1_tree, OPTS, {**CORPUS, "trial_list": "E"})
    (out / "trials.txt").write_text("1 a b\n")
    with pytest.raises(DataError, match="trials.txt changed"):
        check_prepared(out, "voxceleb", vox1_tree, OPTS, CORPUS)


def test_a_preparation_killed_halfway_leaves_the_old_one_whole(vox1_tree, tmp_path, monkeypatch):
    out = tmp_path / "prep"
    ensure_prepared("voxceleb", vox1_tree, out, OPTS, CORPUS)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    import ltspk.data.corpora as corpora

    real = corpora.prepare_corpus

    def dies_after_the_manifests(corpus, data, save, options, **kw):
        real(corpus, data, save, options, **kw)
        (save / "counts.json").unlink()  # as if killed before counts.json was written
        raise KeyboardInterrupt

    monkeypatch.setattr(corpora, "prepare_corpus", dies_after_the_manifests)
    from ltspk.data.prepared import prepare_whole

    with pytest.raises(KeyboardInterrupt):
        prepare_whole("voxceleb", vox1_tree, out, PrepOptions(holdout_per_speaker=2, progress=False, workers=1), CORPUS)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the half-built folder is gone


def test_a_folder_without_fingerprint_is_not_trusted(tmp_path):
    (tmp_path / "prep").mkdir()
    assert check_prepared(tmp_path / "prep", "voxceleb", tmp_path, OPTS) is False  # empty: prepare
    (tmp_path / "prep" / "counts.json").write_text("{}")
    with pytest.raises(DataError, match="not a whole ltspk preparation"):
        check_prepared(tmp_path / "prep", "voxceleb", tmp_path, OPTS)


def test_holdouts_come_before_longtail_subsampling(tmp_path):
    """Every speaker keeps its balanced test and validation utterances, and the training
    counts reach the requested imbalance (max/min), as in long-tailed CIFAR."""
    from conftest import write_audio

    from ltspk.data.folder import prepare_folder
    from ltspk.data.manifest import read_manifest
    from ltspk.data.prepare import PrepOptions

    root = tmp_path / "c"
    for s in range(6):
        for j in range(30):
            write_audio(root / f"spk{s}" / f"u{j:02d}.wav", 0.12, seed=100 * s + j)
    opts = PrepOptions(holdout_per_speaker=3, valid_per_speaker=2, imbalance_factor=5, progress=False, workers=1)
    prepare_folder(tmp_path / "p", root, opts)
    counts = json.loads((tmp_path / "p" / "counts.json").read_text())
    train = counts["counts"]
    assert max(train.values()) == 25 and min(train.values()) == 5 and counts["imbalance_factor"] == 5
    for name, per in (("spkid_test.csv", 3), ("spkid_valid.csv", 2)):
        rows = read_manifest(tmp_path / "p" / name)
        assert sorted({u.spk_id for u in rows}) == sorted(train) and len(rows) == 6 * per
    assert counts["too_small_to_hold_out"] == []
