"""Metrics against a brute-force reference, SpeechBrain, and values computed by hand."""

import numpy as np
import pytest
import torch
from speechbrain.utils.metric_stats import EER as sb_eer
from speechbrain.utils.metric_stats import minDCF as sb_min_dcf

from ltspk.evaluation.metrics import det_curve, eer, min_dcf, shot_group_accuracy, verification_metrics


def brute_force(scores, labels, p=0.01):
    """Every threshold between and around the distinct scores, counted directly."""
    u = np.unique(scores)
    ths = np.r_[u[0] - 1, (u[:-1] + u[1:]) / 2, u[-1] + 1]
    pos, neg = scores[labels == 1], scores[labels == 0]
    best_gap, best_eer, best_dcf = np.inf, None, np.inf
    for t in ths[::-1]:  # from accepting none to accepting all; ties keep the later one
        p_miss, p_fa = (pos < t).mean(), (neg >= t).mean()
        if abs(p_fa - p_miss) <= best_gap:
            best_gap, best_eer = abs(p_fa - p_miss), (p_fa + p_miss) / 2
        best_dcf = min(best_dcf, p * p_miss + (1 - p) * p_fa)
    return best_eer, best_dcf / min(p, 1 - p)


def test_by_hand():
    # targets 0.9, 0.4; non-targets 0.5, 0.1.
    # accept >= 0.9: miss .5, fa 0 (gap .5); >= 0.5: miss .5, fa .5 (gap 0) -> EER 0.5
    assert eer([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0])[0] == pytest.approx(0.5)
    assert eer([0.9, 0.6, 0.5, 0.1], [1, 1, 0, 0]) == (0.0, 0.6)
    # minDCF p=0.5: best point accept >= 0.9 -> 0.5*0.5 + 0 = 0.25, normalised by 0.5 -> 0.5
    assert min_dcf([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0], p_target=0.5)[0] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(6))
def test_equals_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = 300
    labels = (rng.random(n) < 0.3).astype(int)
    scores = np.round(rng.normal(labels * 1.0, 1.0), 1)  # rounding makes many ties
    ref_eer, ref_dcf = brute_force(scores, labels, 0.05)
    assert eer(scores, labels)[0] == pytest.approx(ref_eer)
    assert min_dcf(scores, labels, 0.05)[0] == pytest.approx(ref_dcf)


@pytest.mark.parametrize("seed", range(4))
def test_equals_speechbrain(seed):
    rng = np.random.default_rng(seed)
    labels = (rng.random(400) < 0.4).astype(int)
    scores = np.round(rng.normal(labels * 1.5, 1.0), 2)
    pos, neg = torch.tensor(scores[labels == 1]), torch.tensor(scores[labels == 0])
    assert eer(scores, labels)[0] == pytest.approx(sb_eer(pos, neg)[0], abs=1e-7)
    for p in (0.01, 0.05):
        assert min_dcf(scores, labels, p)[0] * p == pytest.approx(sb_min_dcf(pos, neg, p_target=p)[0], abs=1e-7)


def test_edge_cases():
    assert eer([0.3, 0.3, 0.3, 0.3], [1, 0, 1, 0])[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="both target and non-target"):
        eer([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="NaN"):
        eer([0.1, float("nan")], [1, 0])
    with pytest.raises(ValueError, match="labels must be"):
        eer([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="2 scores but 3 labels"):
        eer([0.1, 0.2], [1, 0, 1])


def test_verification_metrics_and_det():
    rng = np.random.default_rng(0)
    labels = np.r_[np.ones(1000), np.zeros(1000)].astype(int)
    scores = np.r_[rng.normal(2, 1, 1000), rng.normal(0, 1, 1000)]
    m = verification_metrics(scores, labels)
    # two unit Gaussians 2 apart cross at 1: EER = Phi(-1) = 15.87 %
    assert m["eer"] == pytest.approx(15.87, abs=2.0)
    assert 0 < m["min_dcf_0.01"] <= 1 and m["n_trials"] == 2000
    fa, miss = det_curve(scores, labels, max_points=50)
    assert len(fa) <= 50 and fa[0] == 0 and miss[-1] == 0 and np.all(np.diff(fa) >= 0)


def test_shot_group_accuracy_by_hand():
    out = shot_group_accuracy([0, 1, 2, 2, 3], [0, 1, 1, 2, 0], ["many", "many", "few", "few", "medium"])
    assert out["many"] == 100.0 and out["few"] == 50.0 and out["medium"] == 0.0 and out["overall"] == 60.0
    assert out["n_few"] == 2
