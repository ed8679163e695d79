"""CN-Celeb short-clip concatenation (WeSpeaker's recipe): per speaker and genre, long clips kept."""

import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from ltspk.data.cnceleb import prepare_cnceleb
from ltspk.data.concat import plan_groups
from ltspk.data.manifest import Utterance, read_manifest
from ltspk.data.prepare import PrepOptions
from ltspk.data.prepared import check_prepared, prepare_whole
from ltspk.data.summary import load_counts, summary_text
from ltspk.runtime.errors import DataError

SR = 16000
MIN = 2.0
# training clips: name -> seconds (written with exact sample counts at 16 kHz)
CN1_DEV = {
    "id00001": {"singing-01-001": 0.5, "singing-01-002": 0.7, "singing-01-003": 3.0, "singing-02-001": 0.9,
                "singing-02-002": 1.5, "singing-02-003": 0.6, "speech-01-001": 1.0, "speech-01-002": 1.5},
    "id00002": {"vlog-01-001": 0.8, "vlog-01-002": 0.8, "vlog-01-003": 0.8, "vlog-01-004": 0.3,
                "movie-01-001": 1.0, "interview-01-001": 2.5, "interview-01-002": 0.4, "interview-01-003": 0.5},
    "id00003": {f"drama-01-{k:03d}": 0.5 for k in range(1, 9)},
}
CN2 = {"id10001": {"recitation-01-001": 2.0, "recitation-01-002": 1.0, "recitation-01-003": 1.0,
                   "advertisement-01-001": 0.5}}
EVAL = {"id00800": {"interview-01-001": 0.4, "interview-01-002": 0.4, "singing-01-005": 0.4},
        "id00801": {"drama-01-001": 0.4, "drama-01-002": 0.4}}
# worked out by hand: short clips (< 2 s) of one speaker and genre in ID order, taken until they reach 2 s,
# the rest joining the last group; a genre's only short clip is kept; long clips (>= 2 s) are kept
EXPECTED = {
    "id00001/singing-concat-001": ["id00001/singing-01-001", "id00001/singing-01-002", "id00001/singing-02-001"],
    "id00001/singing-concat-002": ["id00001/singing-02-002", "id00001/singing-02-003"],
    "id00001/speech-concat-001": ["id00001/speech-01-001", "id00001/speech-01-002"],
    # 0.8 * 3 reaches 2 s, the 0.3 s left joins it
    "id00002/vlog-concat-001": ["id00002/vlog-01-001", "id00002/vlog-01-002", "id00002/vlog-01-003",
                                "id00002/vlog-01-004"],
    # the genre's short clips together stay under 2 s (0.9 s): one utterance all the same
    "id00002/interview-concat-001": ["id00002/interview-01-002", "id00002/interview-01-003"],
    # exactly 2 s is enough
    "id00003/drama-concat-001": [f"id00003/drama-01-{k:03d}" for k in range(1, 5)],
    "id00003/drama-concat-002": [f"id00003/drama-01-{k:03d}" for k in range(5, 9)],
    "id10001/recitation-concat-001": ["id10001/recitation-01-002", "id10001/recitation-01-003"],
}
KEPT = {"id00001/singing-01-003", "id00002/movie-01-001", "id00002/interview-01-001", "id10001/recitation-01-001",
        "id10001/advertisement-01-001"}
PER_SPEAKER = {"id00001": 4, "id00002": 4, "id10001": 3, "id00003": 2}
NO_HOLDOUT = PrepOptions(holdout_per_speaker=0, progress=False, workers=2, shot_many_above=3.5, shot_few_below=2.5)


def write_clip(path, seconds, seed, sr=SR):
    path.parent.mkdir(parents=True, exist_ok=True)
    n = round(seconds * sr)
    x = 0.3 * np.sin(2 * np.pi * (150 + 7 * seed) * np.arange(n) / sr)
    x += 0.05 * np.random.default_rng(seed).standard_normal(n)
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16", format=path.suffix.lstrip(".").upper())


@pytest.fixture
def cn(tmp_path):
    """CN-Celeb1 (3 dev speakers, 2 evaluation speakers with short clips) and CN-Celeb2 (1 speaker)."""
    cn1, cn2 = tmp_path / "CN-Celeb_flac", tmp_path / "CN-Celeb2_flac"
    seed = 0
    for root, speakers in ((cn1, {**CN1_DEV, **EVAL}), (cn2, CN2)):
        for spk, clips in speakers.items():
            for name, seconds in clips.items():
                seed += 1
                write_clip(root / "data" / spk / f"{name}.flac", seconds, seed)
    (cn1 / "dev").mkdir()
    (cn1 / "dev" / "dev.lst").write_text("".join(f"{s}\n" for s in CN1_DEV))
    for spk in EVAL:
        write_clip(cn1 / "eval" / "enroll" / f"{spk}-enroll.flac", 0.6, seed=90)
    write_clip(cn1 / "eval" / "test" / "id00800-singing-01-005.flac", 0.4, seed=91)
    write_clip(cn1 / "eval" / "test" / "id00801-drama-01-002.flac", 0.4, seed=92)
    lists = cn1 / "eval" / "lists"
    lists.mkdir(parents=True)
    (lists / "enroll.lst").write_text("id00800-enroll enroll/id00800-enroll.wav\nid00801-enroll enroll/id00801-enroll.wav\n")
    (lists / "enroll.map").write_text("id00800-enroll id00800/interview-01-001.wav id00800/interview-01-002.wav\n"
                                      "id00801-enroll id00801-drama-01-001.wav\n")
    (lists / "trials.lst").write_text("id00800-enroll test/id00800-singing-01-005.wav 1\n"
                                      "id00800-enroll test/id00801-drama-01-002.wav 0\n"
                                      "id00801-enroll test/id00801-drama-01-002.wav 1\n")
    (cn2 / "spk.lst").write_text("id10001\n")
    return cn1, cn2


def source_path(cn, uid):
    cn1, cn2 = cn
    return (cn2 if uid.startswith("id1") else cn1) / "data" / f"{uid}.flac"


def tree_digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_short_clips_of_one_speaker_and_genre_are_concatenated(cn, tmp_path):
    cn1, cn2 = cn
    before = {root: tree_digest(root) for root in cn}
    out = tmp_path / "prep"
    prepare_cnceleb(out, cn1, cn2, options=NO_HOLDOUT, concat_min_seconds=MIN)
    assert json.loads((out / "concat_map.json").read_text()) == EXPECTED
    train = {u.ID: u for u in read_manifest(out / "train.csv")}
    assert set(train) == set(EXPECTED) | KEPT
    for new_id, sources in EXPECTED.items():
        spk, name = new_id.split("/")
        u = train[new_id]
        assert u.spk_id == spk and u.wav == str(out / "concat" / spk / f"{name}.wav")
        # never across genres
        assert {s.split("/")[1].split("-")[0] for s in sources} == {name.split("-")[0]}
        # the samples of the sources, end to end, exactly
        parts = [sf.read(source_path(cn, s), dtype="int16")[0] for s in sources]
        made, sr = sf.read(u.wav, dtype="int16")
        assert sr == SR and sf.info(u.wav).subtype == "PCM_16"
        assert (u.start, u.stop) == (0, sum(len(p) for p in parts)) == (0, len(made))
        assert np.array_equal(made, np.concatenate(parts))
    for uid in KEPT:  # long clips (and a genre's only short clip) as they are
        assert train[uid].wav == str(source_path(cn, uid))
    assert train["id00001/singing-01-003"].duration == 3.0
    assert train["id00002/interview-concat-001"].duration == pytest.approx(0.9)
    assert train["id00003/drama-concat-001"].duration == 2.0
    # counts and shot groups are those of what training sees
    info = json.loads((out / "counts.json").read_text())
    assert info["counts"] == info["natural_counts"] == PER_SPEAKER
    assert info["shot_groups"] == {"id00001": "many", "id00002": "many", "id10001": "medium", "id00003": "few"}
    assert info["concat"] == {"min_seconds": 2.0, "source_clips": 28, "short_clips": 25, "clips_concatenated": 23,
                              "utterances_made": 8, "short_left": 3, "utterances": 13}
    assert "short clips concatenated (under 2 s" in summary_text(load_counts(out / "counts.json"))
    # the evaluation (and every source file) is untouched, and still read from the corpus
    assert {root: tree_digest(root) for root in cn} == before
    ver = read_manifest(out / "verification.csv")
    assert {u.ID for u in ver} == {"id00800-enroll", "id00801-enroll", "test/id00800-singing-01-005",
                                   "test/id00801-drama-01-002", "id00800/interview-01-001",
                                   "id00800/interview-01-002", "id00801/drama-01-001"}
    assert all(u.wav.startswith(str(cn1 / "eval")) or u.wav.startswith(str(cn1 / "data" / "id008")) for u in ver)


def test_concat_off_is_todays_preparation(cn, tmp_path):
    cn1, cn2 = cn
    prepare_cnceleb(tmp_path / "default", cn1, cn2, options=NO_HOLDOUT)
    prepare_cnceleb(tmp_path / "off", cn1, cn2, options=NO_HOLDOUT, concat_min_seconds=None)
    for name in ("train.csv", "spkid_test.csv", "spkid_valid.csv", "verification.csv", "trials.txt", "counts.json"):
        assert (tmp_path / "default" / name).read_bytes() == (tmp_path / "off" / name).read_bytes()
    assert not (tmp_path / "off" / "concat").exists() and not (tmp_path / "off" / "concat_map.json").exists()
    info = json.loads((tmp_path / "off" / "counts.json").read_text())
    assert "concat" not in info
    assert info["counts"] == {"id00001": 8, "id00002": 8, "id00003": 8, "id10001": 4}
    train = read_manifest(tmp_path / "off" / "train.csv")
    assert all(u.wav == str(source_path(cn, u.ID)) for u in train)


def test_prepare_whole_lists_paths_that_exist_after_the_swap(cn, tmp_path):
    cn1, cn2 = cn
    out = tmp_path / "prep"
    opts = PrepOptions(holdout_per_speaker=1, valid_per_speaker=1, holdout_by="utterance", progress=False, workers=2)
    corpus_options = {"cn2_folder": str(cn2), "concat_min_seconds": MIN}
    prepare_whole("cnceleb", cn1, out, opts, corpus_options, plot=False)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    rows = {name: read_manifest(out / name) for name in ("train.csv", "spkid_test.csv", "spkid_valid.csv")}
    assert rows["spkid_test.csv"] and rows["spkid_valid.csv"]
    every = [u for r in rows.values() for u in r]
    assert sorted(u.ID for u in every) == sorted(set(EXPECTED) | KEPT)  # hold-outs drawn from the concatenated rows
    for u in every:
        assert (out / "concat").as_posix() in u.wav or u.ID in KEPT
        assert sf.info(u.wav).frames == u.stop  # the file exists where the manifest says
    # the fingerprint holds the choice: another length, or off, is another preparation
    assert check_prepared(out, "cnceleb", cn1, opts, corpus_options)
    with pytest.raises(DataError, match="corpus_options.concat_min_seconds"):
        check_prepared(out, "cnceleb", cn1, opts, {**corpus_options, "concat_min_seconds": 5.0})
    with pytest.raises(DataError, match="concat_min_seconds"):
        check_prepared(out, "cnceleb", cn1, opts, {"cn2_folder": str(cn2)})


def test_mixed_sample_rates_in_a_group_are_refused(cn, tmp_path):
    cn1, cn2 = cn
    odd = cn1 / "data" / "id00001" / "speech-01-002.flac"
    write_clip(odd, 1.5, seed=5, sr=8000)
    with pytest.raises(DataError, match=r"different sample rates.*speech-01-001.flac.*speech-01-002.flac \(8000 Hz\)"):
        prepare_cnceleb(tmp_path / "p", cn1, cn2, options=NO_HOLDOUT, concat_min_seconds=MIN)


@pytest.mark.parametrize("bad", [0, -1, "five", True])
def test_concat_min_seconds_must_be_positive(cn, tmp_path, bad):
    with pytest.raises(ValueError, match="concat_min_seconds"):
        prepare_cnceleb(tmp_path / "p", *cn, options=NO_HOLDOUT, concat_min_seconds=bad)


def test_plan_groups_order_and_leftover():
    def u(uid, seconds):
        return Utterance(uid, seconds, f"/x/{uid}.flac", 0, round(seconds * SR), uid.split("/")[0])

    # given out of order: grouped in ID order, the long a-1-5 left out; the 0.2 s left joins the last
    # group; the lone short clip of genre b is kept (no group)
    rows = [u("s/a-1-3", 1.0), u("s/a-1-1", 1.0), u("s/a-1-2", 1.0), u("s/a-1-4", 0.6), u("s/a-1-6", 0.2),
            u("s/b-1-1", 1.0), u("s/a-1-5", 9.0), u("t/a-1-1", 0.4), u("t/a-1-2", 0.4)]
    plan = plan_groups(rows, 1.5)
    assert {k: [[r.ID for r in g] for g in gs] for k, gs in plan.items()} == {
        ("s", "a"): [["s/a-1-1", "s/a-1-2"], ["s/a-1-3", "s/a-1-4", "s/a-1-6"]],
        ("t", "a"): [["t/a-1-1", "t/a-1-2"]]}  # together under 1.5 s: one group all the same
