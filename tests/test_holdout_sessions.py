"""Speaker-ID hold-outs by session, hold-outs and shot groups fitted to the corpus, and the
imbalance target reached: splits worked out by hand."""

import json
from pathlib import Path

import pytest
from conftest import write_audio

from ltspk.data.folder import prepare_folder
from ltspk.data.longtail import (
    ShotThresholds,
    auto_holdout,
    cross_session,
    session_blocks,
    speaker_id_split,
)
from ltspk.data.manifest import Utterance, read_manifest
from ltspk.data.prepare import PrepOptions
from ltspk.data.voxceleb import prepare_voxceleb
from ltspk.runtime.errors import DataError


def utt(spk, sess, k):
    return Utterance(f"{spk}/{sess}/{k}", 1.0, f"/x/{spk}/{sess}/{k}.wav", 0, 16000, spk)


def test_split_holds_out_whole_sessions_never_seen_in_training():
    # a: sessions s1 (4), s2 (2), s3 (2); 2 held out -> one whole session (or two small ones),
    # what it holds beyond the 2 is in neither split; b: one session -> random recordings
    rows = [utt("a", s, k) for s, n in (("s1", 4), ("s2", 2), ("s3", 2)) for k in range(n)]
    rows += [utt("b", "only", k) for k in range(5)]
    sessions = {u.ID: u.ID.split("/")[1] for u in rows}
    for seed in range(20):
        split = speaker_id_split(rows, 2, seed=seed, sessions=sessions)
        test_a = [u for u in split.test if u.spk_id == "a"]
        train_a = [u for u in split.train if u.spk_id == "a"]
        assert len(test_a) == 2 and len([u for u in split.test if u.spk_id == "b"]) == 2
        held = {sessions[u.ID] for u in test_a}
        assert len(held) == 1  # the 2 come from one session: each session holds >= 2
        assert not held & {sessions[u.ID] for u in train_a}  # none of a's training comes from it
        assert {sessions[u.ID] for u in split.unused} <= held  # unused: the rest of that session
        assert len(train_a) + len(test_a) + len(split.unused) == 8
        assert split.by_session == ["a"] and split.fallback == {"b": "one session"}
    # the same rows by utterance: no unused, everyone falls to random recordings
    split = speaker_id_split(rows, 2, seed=0, sessions=sessions, by="utterance")
    assert not split.unused and split.by_session == [] and len(split.train) == 13 - 4


def test_split_keeps_a_training_session_and_falls_back_when_sessions_cannot_supply():
    # sessions of 1 and 9: holding out 2 whole sessions' worth would leave no training session;
    # the 1-recording session alone is too small: random recordings, counted with the reason
    rows = [utt("a", "s1", 0)] + [utt("a", "s2", k) for k in range(9)]
    sessions = {u.ID: u.ID.split("/")[1] for u in rows}
    split = speaker_id_split(rows, 2, seed=0, sessions=sessions)
    assert split.fallback == {"a": "sessions too small to hold out whole"} and len(split.test) == 2
    # sizes 9 and 1 with 1 to hold out: either session works, training keeps the other
    for seed in range(10):
        split = speaker_id_split(rows, 1, seed=seed, sessions=sessions)
        held = {sessions[u.ID] for u in split.test}
        assert split.by_session == ["a"] and not held & {sessions[u.ID] for u in split.train}
        assert split.train  # at least one training recording always stays


def test_unknown_sessions_fall_back_and_linked_sessions_are_one_block():
    rows = [utt("a", "s1", 0), utt("a", "s2", 0), utt("a", "s3", 0), utt("a", "s4", 0)]
    # a concatenation of clips from s1 and s2 links them: s1+s2, s3, s4 are the blocks
    sessions = {rows[0].ID: ["s1", "s2"], rows[1].ID: "s2", rows[2].ID: "s3", rows[3].ID: "s4"}
    blocks = session_blocks(rows, sessions)
    assert sorted(sorted(u.ID for u in b) for b in blocks) == [["a/s1/0", "a/s2/0"], ["a/s3/0"], ["a/s4/0"]]
    assert session_blocks(rows, {**sessions, rows[3].ID: None}) is None
    split = speaker_id_split(rows, 1, seed=0, sessions={**sessions, rows[3].ID: None})
    assert split.fallback == {"a": "session unknown"}


def test_cross_session_counts_by_hand():
    train = [utt("a", "s1", 0), utt("b", "t1", 0)]
    held = [utt("a", "s1", 1), utt("a", "s2", 0), utt("b", "t2", 0), utt("b", "t9", 9)]
    sessions = {u.ID: u.ID.split("/")[1] for u in train + held}
    sessions["b/t9/9"] = None
    assert cross_session(held, train, sessions) == {"utterances": 4, "cross_session": 2, "same_session": 1,
                                                    "session_unknown": 1}


def test_auto_holdout_and_auto_thresholds_by_hand():
    # 10th percentile (lower) of 100 x 10 speakers is 100: 10 test, 5 validation, as DSPSpeech-20's fixed 10 + 5
    assert auto_holdout({str(i): 100 for i in range(10)}, 0.10) == 10
    assert auto_holdout({str(i): 100 for i in range(10)}, 0.05) == 5
    # 2..30 recordings: the 10th percentile is small, so one of each
    counts = {f"s{n:02d}": n for n in range(2, 31)}
    assert auto_holdout(counts, 0.10) == 1 and auto_holdout(counts, 0.05) == 1
    # tertiles of 1..9: 1/3 -> 3.667, 2/3 -> 6.333: few 1-3, medium 4-6, many 7-9
    th = ShotThresholds.fitted({str(i): i for i in range(1, 10)})
    groups = [th.group(i) for i in range(1, 10)]
    assert groups == ["few"] * 3 + ["medium"] * 3 + ["many"] * 3
    th = ShotThresholds.fitted({str(i): i for i in range(1, 10)}, many_above=100)  # one fixed, one fitted
    assert th.many_above == 100 and th.few_below == pytest.approx(11 / 3)


def test_bad_preparation_values_are_refused_naming_the_key():
    for kwargs, key in (({"holdout_by": "video"}, "holdout_by"), ({"holdout_per_speaker": "some"}, "holdout_per_speaker"),
                        ({"valid_per_speaker": -1}, "valid_per_speaker"), ({"shot_few_below": "x"}, "shot_few_below"),
                        ({"imbalance_factor": 0.5}, "imbalance_factor")):
        with pytest.raises(DataError, match=key):
            PrepOptions(**kwargs)


def test_voxceleb_videos_are_sessions(vox1_tree, tmp_path):
    # id10001: vidA 3, vidB 2; id10002: vidC 3 (one video); id10003: vidD 1, vidE 1
    out = tmp_path / "prep"
    prepare_voxceleb(out, vox1_folder=vox1_tree, options=PrepOptions(holdout_per_speaker=1, progress=False))
    train, test = read_manifest(out / "train.csv"), read_manifest(out / "spkid_test.csv")
    video = {u.ID: u.ID.split("/")[1] for u in train + test}
    for spk in ("id10001", "id10003"):
        held = {video[u.ID] for u in test if u.spk_id == spk}
        assert len(held) == 1 and not held & {video[u.ID] for u in train if u.spk_id == spk}
    h = json.loads((out / "counts.json").read_text())["holdout"]
    assert h["by"] == "session"
    t = h["spkid_test"]
    assert (t["utterances"], t["cross_session"], t["same_session"], t["speakers_by_session"]) == (3, 2, 1, 2)
    assert t["speakers_fallback"] == {"one session": {"speakers": 1, "e.g.": ["id10002"]}}
    held_a = next(video[u.ID] for u in test if u.spk_id == "id10001")
    assert t["recordings_unused"] == {"vidA": 2, "vidB": 1}[held_a]
    assert len(train) + len(test) + t["recordings_unused"] == 10


def session_tree(root, layout, seconds=0.3):
    """``root/<speaker>/<session>/<k>.wav`` for ``{speaker: {session: n}}``."""
    seed = 0
    for spk, sessions in layout.items():
        for sess, n in sessions.items():
            for k in range(n):
                seed += 1
                write_audio(root / spk / sess / f"{k}.wav", seconds, seed=seed)
    return root


def test_folder_sessions_never_shared_between_holdouts_and_training(tmp_path):
    layout = {f"s{i}": {f"call{j}": 2 + (i + j) % 3 for j in range(3 + i % 3)} for i in range(8)}
    layout["mono"] = {"call0": 6}
    root = session_tree(tmp_path / "spk", layout)
    out = tmp_path / "prep"
    prepare_folder(out, root, PrepOptions(holdout_per_speaker=2, valid_per_speaker=1, seed=3, progress=False,
                                          shot_many_above="auto", shot_few_below="auto"))
    rows = {n: read_manifest(out / f"{n}.csv") for n in ("train", "spkid_test", "spkid_valid")}
    sess = {u.ID: u.ID.split("/")[1] for r in rows.values() for u in r}
    trained = {}
    for u in rows["train"]:
        trained.setdefault(u.spk_id, set()).add(sess[u.ID])
    for name in ("spkid_test", "spkid_valid"):
        for u in rows[name]:
            if u.spk_id != "mono":
                assert sess[u.ID] not in trained[u.spk_id], (name, u.ID)
    info = json.loads((out / "counts.json").read_text())
    for name in ("spkid_test", "spkid_valid"):
        rec = info["holdout"][name]
        n_mono = sum(1 for u in rows[name] if u.spk_id == "mono")
        assert rec["utterances"] == len(rows[name]) and rec["cross_session"] == len(rows[name]) - n_mono
        assert rec["same_session"] == n_mono and rec["speakers_fallback"]["one session"]["e.g."] == ["mono"]
    assert info["holdout"]["spkid_test"]["per_speaker"] == 2 and info["options"]["holdout_by"] == "session"


def test_auto_defaults_test_every_speaker_of_three_or_more(tmp_path):
    # 2 to 30 recordings a speaker, no sessions: with auto hold-outs every speaker of >= 3 recordings
    # is tested and validated, a 2-recording speaker is tested; auto groups hold a third each
    layout = {f"spk{n:02d}": n for n in range(2, 31)}
    root = tmp_path / "spk"
    seed = 0
    for spk, n in layout.items():
        for k in range(n):
            seed += 1
            write_audio(root / spk / f"{k}.wav", 0.15, seed=seed)
    out = tmp_path / "prep"
    prepare_folder(out, root, PrepOptions(holdout_per_speaker="auto", valid_per_speaker="auto", shot_many_above="auto",
                                          shot_few_below="auto", progress=False))
    test, valid = read_manifest(out / "spkid_test.csv"), read_manifest(out / "spkid_valid.csv")
    assert {u.spk_id for u in test} == set(layout)
    assert {u.spk_id for u in valid} == {s for s, n in layout.items() if n >= 3}
    info = json.loads((out / "counts.json").read_text())
    assert info["holdout"]["spkid_test"]["per_speaker"] == 1 and info["holdout"]["auto"]["spkid_test"]
    sizes = info["shot_group_sizes"]
    assert min(sizes.values()) >= 8 and sum(sizes.values()) == 29
    assert info["warnings"] == [] or all("session" in w for w in info["warnings"])
    assert info["holdout"]["spkid_test"]["speakers_fallback"]["session unknown"]["speakers"] == 29


def test_fixed_defaults_on_a_small_corpus_say_so_loudly(tmp_path, caplog):
    layout = {f"spk{n:02d}": n for n in range(2, 12)}
    root = tmp_path / "spk"
    for spk, n in layout.items():
        for k in range(n):
            write_audio(root / spk / f"{k}.wav", 0.15, seed=k)
    out = tmp_path / "prep"
    with caplog.at_level("WARNING"):
        prepare_folder(out, root, PrepOptions(holdout_per_speaker=5, valid_per_speaker=2, shot_many_above=40,
                                              shot_few_below=10, progress=False))
    warnings = json.loads((out / "counts.json").read_text())["warnings"]
    assert any("not tested" in w for w in warnings) and any("empty" in w for w in warnings)
    assert any("not tested" in r.message for r in caplog.records)
    from ltspk.data.summary import load_counts, summary_text

    text = summary_text(load_counts(out / "counts.json"))
    assert "WARNING" in text and "not tested" in text


def test_imbalance_target_is_reached_up_to_rounding(tmp_path):
    # 24 speakers x 29 recordings, IF 20: rounded down the smallest would keep 1 (29); up, 2 (14.5)
    root = tmp_path / "spk"
    for i in range(24):
        for k in range(29):
            write_audio(root / f"s{i:02d}" / f"{k}.wav", 0.12, seed=k)
    out = tmp_path / "prep"
    prepare_folder(out, root, PrepOptions(holdout_per_speaker=0, imbalance_factor=20, progress=False))
    info = json.loads((out / "counts.json").read_text())
    assert info["imbalance_factor_target"] == 20 and info["imbalance_factor"] == pytest.approx(14.5)
    from ltspk.data.summary import summary_text

    assert "target 20" in summary_text(info) and "reached 14.5" in summary_text(info)


def test_dspspeech20_words_as_sessions(dspspeech20, tmp_path):
    """Real speech: with the word as session, no speaker is tested on a word it trains on."""
    out = tmp_path / "prep"
    prepare_folder(out, dspspeech20, PrepOptions(holdout_per_speaker="auto", valid_per_speaker="auto",
                                                 imbalance_factor=20, shot_many_above="auto", shot_few_below="auto",
                                                 progress=False, workers=2),
                   session_pattern=r"^[^-]+-(?P<session>[^-]+)-", verification_speakers=10)
    info = json.loads((out / "counts.json").read_text())
    h = info["holdout"]
    assert (h["spkid_test"]["per_speaker"], h["spkid_valid"]["per_speaker"]) == (10, 5)
    for name in ("spkid_test", "spkid_valid"):
        assert h[name]["utterances"] == 240 // (2 if name == "spkid_valid" else 1)
        assert h[name]["cross_session"] == h[name]["utterances"]  # every one on a word the speaker never trains on
        assert h[name]["recordings_unused"] == 0  # 5 takes a word: whole words, nothing left over
    assert info["imbalance_factor"] <= 20 + 1e-9 and min(info["shot_group_sizes"].values()) >= 7
    assert Path(out / "train.csv").is_file()


def test_identify_enrol_holds_out_whole_sessions():
    from ltspk.data.folder import id_session
    from ltspk.identify.settings import EnrolSettings
    from ltspk.identify.split import assign_roles, holdout_counts

    assert id_session("spk/call3/001") == "call3" and id_session("spk/spk-w1-2", r"^[^-]+-(?P<session>[^-]+)-") == "w1"
    assert id_session("spk/file") is None
    # a: 5 calls of 3 recordings; b: one call (random); c: 2 calls of 5: the test is a whole call, the
    # validation random recordings of the other (no third call to hold out whole)
    rows = [utt("a", f"call{c}", k) for c in range(5) for k in range(3)]
    rows += [utt("b", "call0", k) for k in range(9)] + [utt("c", f"call{c}", k) for c in range(2) for k in range(5)]
    rows += [utt("imp", "x", k) for k in range(4)] + [utt("imp2", "y", k) for k in range(4)]
    rows.sort(key=lambda u: (u.spk_id, u.ID))
    for seed in range(5):
        s = EnrolSettings(test_per_speaker=2, valid_per_speaker=1, seed=seed).check()
        roles, too_small = assign_roles(rows, s, {"imp", "imp2"})
        sess = {u.ID: id_session(u.ID) for u in rows}
        enrolled_a = {sess[u.ID] for u, r in zip(rows, roles) if u.spk_id == "a" and r == "enrol"}
        for role in ("test", "valid"):
            held = {sess[u.ID] for u, r in zip(rows, roles) if u.spk_id == "a" and r == role}
            assert len(held) == 1 and not held & enrolled_a
        # the rest of the held-out calls: 3 - 2 of the test call, 3 - 1 of the validation call
        assert sum(1 for u, r in zip(rows, roles) if u.spk_id == "a" and r == "unused") == (3 - 2) + (3 - 1)
        counts = holdout_counts(rows, roles, s)
        assert counts["test"]["cross_session"] == 4 and counts["test"]["same_session"] == 2  # a, c cross; b within
        test_c = {sess[u.ID] for u, r in zip(rows, roles) if u.spk_id == "c" and r == "test"}
        enrol_c = {sess[u.ID] for u, r in zip(rows, roles) if u.spk_id == "c" and r == "enrol"}
        assert len(test_c) == 1 and not test_c & enrol_c
        assert sum(1 for u, r in zip(rows, roles) if u.spk_id == "c" and r == "valid") == 1
        assert counts["by"] == "session" and counts["unused"] == 3 + (5 - 2)  # a as above; the rest of c's test call
    s = EnrolSettings(holdout_by="utterance").check()
    roles, _ = assign_roles(rows, s, {"imp", "imp2"})
    assert "unused" not in roles


def test_small_sessions_are_held_out_first_and_auto_tests_small_speakers(tmp_path):
    # each speaker: big/ 20 + s1/ 1 + s2/ 1; one test and one validation recording: the single-recording
    # sessions go, nothing is wasted and training keeps the big session whole
    root = session_tree(tmp_path / "spk", {f"p{i}": {"big": 20, "s1": 1, "s2": 1} for i in range(6)}, seconds=0.12)
    out = tmp_path / "prep"
    prepare_folder(out, root, PrepOptions(holdout_per_speaker=1, valid_per_speaker=1, progress=False))
    info = json.loads((out / "counts.json").read_text())
    assert set(info["counts"].values()) == {20}
    assert info["holdout"]["spkid_test"]["recordings_unused"] == 0 and info["holdout"]["spkid_test"]["cross_session"] == 6
    # skewed sizes with auto hold-outs: 19 speakers of 30 and one of 3: 3 a speaker, but the small one holds out one
    layout = {f"q{i:02d}": 30 for i in range(19)} | {"tiny": 3}
    root = tmp_path / "skew"
    for spk, n in layout.items():
        for k in range(n):
            write_audio(root / spk / f"{k}.wav", 0.1, seed=k)
    out = tmp_path / "prep2"
    prepare_folder(out, root, PrepOptions(holdout_per_speaker="auto", valid_per_speaker="auto", progress=False))
    test, valid = read_manifest(out / "spkid_test.csv"), read_manifest(out / "spkid_valid.csv")
    assert sum(u.spk_id == "tiny" for u in test) == 1 and sum(u.spk_id == "tiny" for u in valid) == 1
    h = json.loads((out / "counts.json").read_text())["holdout"]
    assert h["spkid_test"]["per_speaker"] == 3 and h["spkid_test"]["speakers_holding_out_one"] == ["tiny"]


def test_impossible_numbers_are_refused_naming_the_key():
    for kwargs, key in (({"imbalance_factor": float("nan")}, "imbalance_factor"), ({"imbalance_factor": float("inf")},
                        "imbalance_factor"), ({"shot_many_above": float("nan")}, "shot_many_above"),
                        ({"shot_quantiles": (0.9, 0.1)}, "shot_quantiles"), ({"shot_quantiles": (2, 3)}, "shot_quantiles"),
                        ({"shot_few_below": 50, "shot_many_above": 10}, "shot_few_below"),
                        ({"min_utterances": -4}, "min_utterances")):
        with pytest.raises(DataError, match=key):
            PrepOptions(**kwargs)
    with pytest.raises(DataError, match="session_pattern.*not a regular expression"):
        prepare_folder("/nonexistent-out", Path(__file__).parent, PrepOptions(), session_pattern="(")
