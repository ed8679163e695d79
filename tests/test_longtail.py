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
from ltspk.runtime.errors import DataError


def rows(counts):
    return [Utterance(f"{s}/{k}", 1.0, f"/x/{s}/{k}.wav", 0, 16000, s) for s, n in counts.items() for k in range(n)]


def test_longtail_targets_exponential_profile():
    # C = 5, n_max = 100, IF = 16: 100 * 16^(-i/4) = 100, 50, 25, 12.5, 6.25 -> floor, but the
    # smallest keeps the ceiling of its target (7): reached 100 / 7 = 14.3 <= 16, never above
    counts = {"a": 100, "b": 100, "c": 100, "d": 100, "e": 100}
    assert longtail_targets(counts, 16) == {"a": 100, "b": 50, "c": 25, "d": 12, "e": 7}
    # never more than a speaker has; ranked by natural count; a speaker below its target keeps all
    # it has and the head is capped at target x smallest, so the imbalance reached stays <= 4
    assert longtail_targets({"a": 10, "b": 200, "c": 3}, 4) == {"b": 12, "a": 10, "c": 3}
    assert longtail_targets({"a": 10, "b": 200, "c": 30}, 4) == {"b": 40, "c": 30, "a": 10}
    # 102, 52, 6 at 20 (after hold-outs 100, 50, 4): reached 25 before the cap, 20 now
    assert longtail_targets({"a": 100, "b": 50, "c": 4}, 20) == {"a": 80, "b": 22, "c": 4}


def test_imbalance_target_reached_up_to_rounding():
    # n_max 29, IF 20: the smallest's target 1.45; rounded down it would reach 29, rounded up 14.5
    counts = {f"s{i:02d}": 29 for i in range(10)}
    t = longtail_targets(counts, 20)
    assert min(t.values()) == 2 and max(t.values()) / min(t.values()) == 14.5
    # the case: 85 recordings a speaker, 24 speakers, IF 20: 85/20 = 4.25 -> 5 (reached 17, not 21.25)
    t = longtail_targets({f"s{i:02d}": 85 for i in range(24)}, 20)
    assert min(t.values()) == 5 and max(t.values()) == 85
    for target in (2, 5, 10, 20, 50):
        for n_max in (7, 29, 85, 100, 333):
            t = longtail_targets({f"s{i:02d}": n_max for i in range(17)}, target)
            assert max(t.values()) / min(t.values()) <= target + 1e-9


def test_longtail_subsample_counts_and_seed():
    data = rows({"a": 40, "b": 40, "c": 40})
    sub = longtail_subsample(data, 10, seed=3)  # 40, 40*10^-0.5 = 12.6 -> 12, 4 (= 40 / 10 exactly)
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
