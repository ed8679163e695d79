"""Verification and identification metrics, exact and sort-bound.

Operating points: accepting every trial whose score is >= t, for t at each distinct score
(plus "accept none"). Trials with equal scores are never split by a threshold, so ties are
handled the same way in every metric. One sort, O(N log N) time, O(N) memory.

- EER: at the operating point where |P_fa - P_miss| is smallest, (P_fa + P_miss) / 2 (the
  definition SpeechBrain 1.1's ``metric_stats.EER`` uses, without its loop over thresholds).
- minDCF: min over operating points of C_miss * P_miss * p + C_fa * P_fa * (1 - p),
  NORMALISED by min(C_miss * p, C_fa * (1 - p)) (NIST SRE). SpeechBrain's ``minDCF`` returns
  the unnormalised value: ours times that normaliser equals it.
"""

from dataclasses import dataclass

import numpy as np


def _validate(scores, labels):
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    if scores.size == 0:
        raise ValueError("no trials to score")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} score(s) are NaN or infinite")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (non-target) or 1 (target)")
    labels = labels.astype(bool)
    n_tar = int(labels.sum())
    if n_tar == 0 or n_tar == labels.size:
        raise ValueError("the trials need both target and non-target trials "
                         f"(got {n_tar} target, {labels.size - n_tar} non-target)")
    return scores, labels


@dataclass
class OperatingPoints:
    """P_miss and P_fa at each operating point, from "accept none" to "accept all"."""

    thresholds: np.ndarray  # accept scores >= threshold; +inf for "accept none"
    p_miss: np.ndarray
    p_fa: np.ndarray


def operating_points(scores, labels, weights=None):
    """``weights`` (non-negative, one per trial) count a trial that many times: the bootstrap
    over speakers (``ltspk.compare.stats``) weights each trial by how often its speakers were drawn."""
    scores, labels = _validate(scores, labels)
    order = np.argsort(-scores, kind="stable")
    s, lab = scores[order], labels[order]
    if weights is None:
        tp = np.cumsum(lab)
        fp = np.arange(1, s.size + 1) - tp
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != scores.shape or (w < 0).any():
            raise ValueError("weights must be one non-negative number per trial")
        w = w[order]
        tp, fp = np.cumsum(w * lab), np.cumsum(w * ~lab)
        if tp[-1] <= 0 or fp[-1] <= 0:
            raise ValueError("the weighted trials need both target and non-target weight")
    last_of_run = np.r_[s[1:] != s[:-1], True]  # thresholds fall between distinct scores
    n_tar, n_non = tp[-1], fp[-1]
    p_miss = np.r_[1.0, 1.0 - tp[last_of_run] / n_tar]
    p_fa = np.r_[0.0, fp[last_of_run] / n_non]
    return OperatingPoints(np.r_[np.inf, s[last_of_run]], p_miss, p_fa)


def eer(scores, labels, points=None):
    """Equal error rate as a fraction (0..1), and the threshold where it is reached."""
    pts = points or operating_points(scores, labels)
    gap = np.abs(pts.p_fa - pts.p_miss)
    # ties: the most accepting point (SpeechBrain's order of thresholds)
    i = len(gap) - 1 - int(np.argmin(gap[::-1]))
    return float((pts.p_fa[i] + pts.p_miss[i]) / 2), float(pts.thresholds[i])


def min_dcf(scores, labels, p_target=0.01, c_miss=1.0, c_fa=1.0, points=None):
    """Normalised minimum detection cost, and its threshold."""
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    pts = points or operating_points(scores, labels)
    dcf = c_miss * p_target * pts.p_miss + c_fa * (1 - p_target) * pts.p_fa
    i = int(np.argmin(dcf))
    return float(dcf[i] / min(c_miss * p_target, c_fa * (1 - p_target))), float(pts.thresholds[i])


def det_curve(scores, labels, max_points=2000):
    """(P_fa, P_miss) pairs for a DET plot, thinned to at most ``max_points``."""
    pts = operating_points(scores, labels)
    idx = np.unique(np.linspace(0, len(pts.p_fa) - 1, min(max_points, len(pts.p_fa))).round().astype(int))
    return pts.p_fa[idx], pts.p_miss[idx]


def verification_metrics(scores, labels, p_targets=(0.01, 0.05), weights=None, c_miss=1.0, c_fa=1.0):
    """EER (%) and normalised minDCF at each p_target (costs ``c_miss``, ``c_fa``), from one sort."""
    pts = operating_points(scores, labels, weights)
    out = {"eer": 100 * eer(None, None, pts)[0], "n_trials": int(len(np.asarray(scores).ravel()))}
    for p in p_targets:
        out[f"min_dcf_{p:g}"] = min_dcf(None, None, p, c_miss, c_fa, points=pts)[0]
    return out


def shot_group_accuracy(predictions, targets, groups_of_targets):
    """Top-1 accuracy (%) overall and per shot group.

    ``groups_of_targets`` holds, per test item, the shot group of its true class.
    Accuracy per group is over test items; empty groups are reported as None.
    """
    pred = np.asarray(predictions)
    tgt = np.asarray(targets)
    grp = np.asarray(groups_of_targets)
    if not (pred.shape == tgt.shape == grp.shape):
        raise ValueError("predictions, targets and groups must have one entry per test item")
    correct = pred == tgt
    out = {"overall": float(100 * correct.mean()) if correct.size else None, "n": int(correct.size)}
    for g in ("many", "medium", "few"):
        m = grp == g
        out[g] = float(100 * correct[m].mean()) if m.any() else None
        out[f"n_{g}"] = int(m.sum())
    return out
