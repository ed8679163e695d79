"""Long-tail controls against values computed by hand."""

import pytest

from ltspk.data.longtail import (
    ShotThresholds,
    filter_min_utterances,
    longtail_subsample,
    longtail_targets,
    shot_groups,
    speaker_id_split,
)
from ltspk.data.manifest import Utterance, read_manifest, speaker_counts, write_manifest
from ltspk.errors import DataError


def rows(counts):
    return [Utterance(f"{s}/{k}", 1.0, f"/x/{s}/{k}.wav", 0, 16000, s) for s, n in counts.items() for k in range(n)]


def test_longtail_targets_exponential_profile():
    # C = 5, n_max = 100, IF = 16: 100 * 16^(-i/4) = 100, 50, 25, 12.5, 6.25 -> floor
    counts = {"a": 100, "b": 100, "c": 100, "d": 100, "e": 100}
    assert longtail_targets(counts, 16) == {"a": 100, "b": 50, "c": 25, "d": 12, "e": 6}
    # never more than a speaker has; ranked by natural count
    assert longtail_targets({"a": 10, "b": 200, "c": 3}, 4) == {"b": 200, "a": 10, "c": 3}
    assert longtail_targets({"a": 10, "b": 200, "c": 30}, 4) == {"b": 200, "c": 30, "a": 10}


def test_longtail_subsample_counts_and_seed():
    data = rows({"a": 40, "b": 40, "c": 40})
    sub = longtail_subsample(data, 10, seed=3)  # 40, 40*10^-0.5 = 12.6 -> 12, 4
    assert speaker_counts(sub) == {"a": 40, "b": 12, "c": 4}
    assert [u.ID for u in sub] == [u.ID for u in longtail_subsample(data, 10, seed=3)]
    assert [u.ID for u in sub] != [u.ID for u in longtail_subsample(data, 10, seed=4)]
    with pytest.raises(ValueError):
        longtail_targets({"a": 1}, 0.5)


def test_min_utterances_and_holdout():
    data = rows({"a": 5, "b": 3, "c": 1})
    kept, dropped = filter_min_utterances(data, 2)
    assert dropped == ["c"] and speaker_counts(kept) == {"a": 5, "b": 3}
    split = speaker_id_split(data, per_speaker=2, seed=0)
    assert speaker_counts(split.test) == {"a": 2, "b": 2}
    assert speaker_counts(split.train) == {"a": 3, "b": 1, "c": 1}
    assert split.too_small == ["c"]
    assert not {u.ID for u in split.train} & {u.ID for u in split.test}


def test_shot_groups_boundaries():
    th = ShotThresholds()
    assert shot_groups({"a": 101, "b": 100, "c": 20, "d": 19}, th) == {"a": "many", "b": "medium", "c": "medium", "d": "few"}
    q = ShotThresholds.from_quantiles({str(i): i for i in range(1, 11)}, 0.3, 0.7)
    # numpy linear quantiles of 1..10: 0.3 -> 3.7, 0.7 -> 7.3
    assert (q.few_below, q.many_above) == pytest.approx((3.7, 7.3))
    assert q.group(3) == "few" and q.group(4) == "medium" and q.group(8) == "many"


def test_manifest_roundtrip_and_errors(tmp_path):
    data = rows({"a": 2})
    write_manifest(tmp_path / "m.csv", data)
    assert read_manifest(tmp_path / "m.csv") == data
    (tmp_path / "dup.csv").write_text("ID,duration,wav,start,stop,spk_id\nx,1,/a.wav,0,10,s\nx,1,/b.wav,0,10,s\n")
    with pytest.raises(DataError, match="dup.csv: line 3: duplicate utterance ID 'x'"):
        read_manifest(tmp_path / "dup.csv")
    (tmp_path / "cols.csv").write_text("ID,wav,spk_id\nx,/a.wav,s\n")
    with pytest.raises(DataError, match="missing manifest column"):
        read_manifest(tmp_path / "cols.csv")
    (tmp_path / "num.csv").write_text("ID,duration,wav,start,stop,spk_id\nx,abc,/a.wav,0,10,s\n")
    with pytest.raises(DataError, match="line 2: malformed"):
        read_manifest(tmp_path / "num.csv")
