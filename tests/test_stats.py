"""Bootstrap over speakers, paired differences and intervals over seeds, against values
worked out by hand."""

import numpy as np
import pytest
from scipy import stats as sps

from ltspk.compare.stats import (
    accuracy_interval,
    eer_interval,
    over_seeds,
    paired_accuracy_difference,
    pooled_paired_difference,
    verdict,
)
from ltspk.evaluation.metrics import eer, operating_points, verification_metrics


def test_accuracy_interval_two_speakers_by_hand():
    # speaker a: 2/2 right, b: 0/2. Resampling 2 speakers gives aa (100%) 1/4, ab (50%) 1/2, bb (0%) 1/4:
    # the 2.5% and 97.5% percentiles are 0 and 100; the point estimate is 50.
    v, lo, hi = accuracy_interval([1, 1, 0, 0], ["a", "a", "b", "b"], n_resamples=2000)
    assert (v, lo, hi) == (50.0, 0.0, 100.0)


def test_accuracy_interval_resamples_speakers_not_items():
    # 10 speakers of 10 items; 5 speakers always right, 5 always wrong. Item-level resampling would
    # give a narrow interval (binomial, n=100: about +-10); speaker-level: binomial n=10, about +-30.
    correct = np.repeat([1, 0] * 5, 10)
    speakers = np.repeat(np.arange(10), 10)
    v, lo, hi = accuracy_interval(correct, speakers, n_resamples=4000)
    assert v == 50.0 and hi - lo > 45
    assert accuracy_interval([1, 1, 1], ["a", "b", "c"]) == (100.0, 100.0, 100.0)  # no spread at all


def test_paired_difference_by_hand():
    # B fixes speaker b's two items; speakers resampled jointly: aa +0, ab +50, bb +100 (1/4, 1/2, 1/4)
    d, lo, hi = paired_accuracy_difference([1, 1, 0, 0], [1, 1, 1, 1], ["a", "a", "b", "b"], n_resamples=2000)
    assert (d, lo, hi) == (50.0, 0.0, 100.0)
    # identical systems: the difference is exactly 0 in every resample
    assert paired_accuracy_difference([1, 0, 1], [1, 0, 1], ["a", "b", "c"]) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="same test items"):
        paired_accuracy_difference([1, 0], [1], ["a", "b"])


def test_weighted_operating_points_equal_repeated_trials():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    labels = np.array([1, 0, 1, 1, 0, 0, 1])
    w = np.array([2, 1, 0, 3, 1, 2, 1])
    rep = verification_metrics(np.repeat(scores, w), np.repeat(labels, w))
    weighted = verification_metrics(scores, labels, weights=w)
    assert weighted["eer"] == pytest.approx(rep["eer"]) and weighted["min_dcf_0.01"] == pytest.approx(rep["min_dcf_0.01"])
    assert eer(None, None, operating_points(scores, labels, np.ones(7)))[0] == eer(scores, labels)[0]


def test_eer_interval_is_degenerate_when_every_draw_agrees():
    # perfectly separated scores: every resample of speakers has EER 0
    scores = [0.9, 0.8, 0.1, 0.2]
    labels = [1, 1, 0, 0]
    assert eer_interval(scores, labels, ["a", "b", "a", "b"], ["a", "b", "b", "a"], n_resamples=200) == (0.0, 0.0, 0.0)


def test_over_seeds_by_hand():
    s = over_seeds([1.0, 2.0, 3.0])
    half = sps.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)  # 4.3027 * sd 1 / sqrt(3) = 2.484
    assert s["mean"] == 2.0 and s["sd"] == 1.0 and s["low"] == pytest.approx(2 - half) and half == pytest.approx(2.484, abs=1e-3)
    assert over_seeds([4.0])["sd"] is None and over_seeds([None]) is None


def test_verdict():
    assert verdict(0.5, 2.0) == "better" and verdict(-2.0, -0.1) == "worse" and verdict(-1, 1) == "within noise"
    assert verdict(0.5, 2.0, higher_is_better=False) == "worse"  # an EER difference above 0 is worse
    assert verdict(None, None).startswith("one seed")
    assert verdict(2.9e-16, 13.9) == "within noise" and verdict(-13.9, -2.9e-16) == "within noise"  # 0 up to rounding


def test_pooled_paired_difference_by_hand():
    # two seeds, each: speaker a unchanged (2/2 both), speaker b fixed by B (0/2 -> 2/2)
    pair = ([1, 1, 0, 0], [1, 1, 1, 1], ["a", "a", "b", "b"])
    d, lo, hi = pooled_paired_difference([pair, pair], n_resamples=4000)
    # per seed: aa +0, ab +50, bb +100 (1/4, 1/2, 1/4); the mean of two seeds ranges 0..100
    assert d == 50.0 and lo in (0.0, 25.0) and hi in (75.0, 100.0)
    one = pooled_paired_difference([pair], n_resamples=4000)
    assert one[1] == 0.0 and one[2] == 100.0 and hi - lo <= one[2] - one[1]  # more seeds: not wider
