"""Open-set identification: detection and identification rate (DIR) at a false-alarm rate, and OSCR.

A probe of an enrolled ("known") speaker has a rejection score (the higher, the surer it is
someone enrolled) and is correct when its top-1 speaker is its own; an impostor probe comes
from a speaker who was never enrolled. At a threshold t a probe is accepted when its score
is >= t (equal scores are never split, as in ``ltspk.evaluation.metrics``).

- FAR(t): impostor probes accepted / impostor probes.
- DIR(t) (correct classification rate, CCR): known probes accepted AND correct / known probes.
- ``far_threshold(impostor_scores, far)``: the most accepting threshold whose FAR is at most
  ``far``: with impostor scores sorted s_1 >= s_2 >= ..., k = floor(far * n), accept the
  scores above s_(k+1) (so at most k impostors are accepted, fewer where s_(k+1) ties with
  higher ones). ``dir_at_far`` reports DIR there; per shot group it is over that group's known
  probes, while FAR always counts all impostors.
- OSCR (Dhamija et al., NeurIPS 2018): the curve of DIR against FAR over every threshold,
  from (0, 0) (accept none) to (1, closed-set accuracy) (accept all); ``oscr_auc`` is its
  area (trapezoids), at most the closed-set accuracy.

How far to trust a threshold: it is set on a finite number n of impostor probes, so the false-alarm
rate it gives on new impostors is uncertain, the more so the fewer probes (with 20 probes and a 5%
target the threshold rests on one false alarm; test FARs from 0 to 46% were seen). ``far_at_threshold``
reports a measured FAR with its Clopper-Pearson 95% interval (``rate_interval``, scipy), and
``threshold_caution`` warns when a threshold for a target rate r rests on fewer than
``min_impostor_probes(r)`` = ceil(``MIN_FALSE_ALARMS`` / r) probes: with 20 expected false alarms the
95% interval of a measured 5% is about [3%, 8%] (400 probes), with 1 it is [0.1%, 25%] (20 probes).
"""

import math

import numpy as np

from ltspk.data.longtail import SHOT_GROUPS

DEFAULT_FARS = (0.01, 0.05, 0.1)
MIN_FALSE_ALARMS = 20  # a threshold for a false-alarm rate r wants at least 20 / r impostor probes behind it


def min_impostor_probes(target_far):
    """Impostor probes a threshold for ``target_far`` should rest on: ceil(MIN_FALSE_ALARMS / target_far)."""
    if not 0 < target_far <= 1:
        raise ValueError(f"target false-alarm rate must be in (0, 1], got {target_far}")
    return math.ceil(MIN_FALSE_ALARMS / target_far - 1e-9)


def rate_interval(k, n, confidence=0.95):
    """Clopper-Pearson (exact binomial) interval of a rate k / n: (low, high); (0, 1) when n is 0."""
    from scipy.stats import beta

    k, n = int(k), int(n)
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    a = (1 - confidence) / 2
    low = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return low, high


def far_at_threshold(impostor_scores, threshold):
    """{far, false_alarms, n_impostor_probes, far_ci95: [low, high]} of accepting scores >= ``threshold``."""
    imp = np.asarray(impostor_scores, dtype=np.float64).ravel()
    k = int(np.sum(imp >= threshold))
    low, high = rate_interval(k, imp.size)
    return {"far": k / imp.size if imp.size else None, "false_alarms": k, "n_impostor_probes": int(imp.size),
            "far_ci95": [low, high]}


def threshold_caution(n_probes, target_far):
    """A warning (str) when a threshold for ``target_far`` rests on fewer than ``min_impostor_probes``
    impostor probes; None otherwise."""
    need = min_impostor_probes(target_far)
    if n_probes >= need:
        return None
    k = math.floor(target_far * n_probes + 1e-9)
    low, high = rate_interval(k, n_probes) if n_probes else (0.0, 1.0)
    return (f"the 'unknown' threshold rests on {n_probes} impostor probe(s) ({k} false alarm(s) allowed at the "
            f"target rate {target_far:g}); a rate measured on so few has a 95% interval of "
            f"[{100 * low:.1f}%, {100 * high:.1f}%], so the false-alarm rate on new impostors may be far from the "
            f"target: {need} or more probes are wanted (more impostor speakers or recordings)")


def _check(known_scores, known_correct, impostor_scores):
    ks = np.asarray(known_scores, dtype=np.float64).ravel()
    kc = np.asarray(known_correct, dtype=bool).ravel()
    imp = np.asarray(impostor_scores, dtype=np.float64).ravel()
    if ks.shape != kc.shape:
        raise ValueError(f"{ks.size} known scores but {kc.size} correctness flags")
    if ks.size == 0 or imp.size == 0:
        raise ValueError(f"open-set evaluation needs known and impostor probes (got {ks.size} known, {imp.size} impostor)")
    if np.isnan(ks).any() or np.isnan(imp).any():
        raise ValueError("open-set scores hold NaN")
    return ks, kc, imp


def far_threshold(impostor_scores, far):
    """Accept scores >= the returned threshold: the most accepting one with FAR <= ``far``."""
    if not 0 <= far <= 1:
        raise ValueError(f"false-alarm rate must be in [0, 1], got {far}")
    imp = np.sort(np.asarray(impostor_scores, dtype=np.float64).ravel())[::-1]
    if imp.size == 0:
        raise ValueError("no impostor scores to set a threshold on")
    k = int(np.floor(far * imp.size + 1e-9))
    if k >= imp.size:
        return -np.inf
    return float(np.nextafter(imp[k], np.inf))


def dir_at_far(known_scores, known_correct, impostor_scores, far, known_groups=None):
    """{threshold, far (actual), overall, many, medium, few} with DIR as fractions."""
    ks, kc, imp = _check(known_scores, known_correct, impostor_scores)
    t = far_threshold(imp, far)
    hit = kc & (ks >= t)
    out = {"threshold": t, "far": float(np.mean(imp >= t)), "overall": float(hit.mean())}
    if known_groups is not None:
        g = np.asarray(known_groups)
        for name in SHOT_GROUPS:
            m = g == name
            out[name] = float(hit[m].mean()) if m.any() else None
    return out


def oscr_curve(known_scores, known_correct, impostor_scores):
    """(FAR, DIR) at every operating point, from accept-none to accept-all."""
    ks, kc, imp = _check(known_scores, known_correct, impostor_scores)
    s = np.r_[ks, imp]
    is_imp = np.r_[np.zeros(ks.size, bool), np.ones(imp.size, bool)]
    correct = np.r_[kc, np.zeros(imp.size, bool)]
    order = np.argsort(-s, kind="stable")
    s, is_imp, correct = s[order], is_imp[order], correct[order]
    last = np.r_[s[1:] != s[:-1], True]
    far = np.r_[0.0, np.cumsum(is_imp)[last] / imp.size]
    ccr = np.r_[0.0, np.cumsum(correct)[last] / ks.size]
    return far, ccr


def oscr_auc(known_scores, known_correct, impostor_scores):
    far, ccr = oscr_curve(known_scores, known_correct, impostor_scores)
    return float(np.sum(np.diff(far) * (ccr[1:] + ccr[:-1]) / 2))


def openset_report(known_scores, known_correct, known_groups, impostor_scores, fars=DEFAULT_FARS):
    """Per shot group (and overall): DIR % at each FAR and OSCR area %, plus probe counts."""
    ks, kc, imp = _check(known_scores, known_correct, impostor_scores)
    g = np.asarray(known_groups)
    at = {far: dir_at_far(ks, kc, imp, far, g) for far in fars}
    out = {"n_impostor_probes": int(imp.size), "thresholds": {f"{far:g}": at[far]["threshold"] for far in fars}}
    for name in (*SHOT_GROUPS, "overall"):
        m = np.ones(ks.size, bool) if name == "overall" else g == name
        if not m.any():
            out[name] = None
            continue
        row = {"n": int(m.sum()), "oscr_auc": 100 * oscr_auc(ks[m], kc[m], imp), "closed_set": 100 * float(kc[m].mean())}
        for far in fars:
            row[f"dir@{far:g}"] = 100 * at[far][name]
        out[name] = row
    return out
