"""How sure a comparison is: bootstrap intervals within a run, and intervals over seeds.

Within a run the unit of resampling is the **speaker**, not the test item or the trial: a
speaker's utterances (and every trial that involves the speaker) share a voice, a channel and
a classifier row, so they are not independent. Percentile intervals, a fixed seed, numpy and
scipy only.

- ``accuracy_interval``: top-1 accuracy % and its interval (``scipy.stats.bootstrap`` over
  speakers with per-speaker (correct, items) pairs).
- ``paired_accuracy_difference``: accuracy of B minus A on the same test items, speakers
  resampled jointly, so the interval reflects the paired design.
- ``eer_interval``: EER % with speakers resampled; a trial counts (weight) as many times as
  the product of the draws of its two speakers (trials whose speakers were not drawn drop out).
- ``over_seeds``: mean, standard deviation and the Student-t 95% interval of the mean over seeds.
"""

import numpy as np
from scipy import stats as sps

from ltspk.evaluation.metrics import eer, operating_points

LEVEL = 0.95
N_RESAMPLES = 1000


def _per_speaker(values, speakers):
    """(speaker order, per-speaker sums of each array in ``values``, per-speaker item counts)."""
    speakers = np.asarray(speakers)
    uniq, inv = np.unique(speakers, return_inverse=True)
    sums = [np.bincount(inv, weights=np.asarray(v, dtype=np.float64), minlength=len(uniq)) for v in values]
    return uniq, sums, np.bincount(inv, minlength=len(uniq)).astype(np.float64)


def _bootstrap(data, statistic, n_resamples, level, seed):
    n_units = len(data[0])
    point = float(statistic(*data))
    if n_units < 2:
        return point, point, point
    res = sps.bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=n_resamples,
                        confidence_level=level, method="percentile", rng=np.random.default_rng(seed))
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def _ratio(num, den, axis=-1):
    return 100.0 * np.sum(num, axis=axis) / np.sum(den, axis=axis)


def accuracy_interval(correct, speakers, n_resamples=N_RESAMPLES, level=LEVEL, seed=0):
    """(accuracy %, low, high) of boolean ``correct`` per test item, resampling speakers."""
    correct = np.asarray(correct, dtype=bool)
    if correct.size == 0:
        return None
    _, (c,), n = _per_speaker([correct], speakers)
    return _bootstrap((c, n), _ratio, n_resamples, level, seed)


def paired_accuracy_difference(correct_a, correct_b, speakers, n_resamples=N_RESAMPLES, level=LEVEL, seed=0):
    """(accuracy B - A in points, low, high) on the same items, resampling speakers jointly."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("paired accuracies need the same test items")
    if a.size == 0:
        return None
    _, (ca, cb), n = _per_speaker([a, b], speakers)

    def diff(ca, cb, n, axis=-1):
        return _ratio(cb, n, axis) - _ratio(ca, n, axis)

    return _bootstrap((ca, cb, n), diff, n_resamples, level, seed)


def pooled_paired_difference(pairs, n_resamples=N_RESAMPLES, level=LEVEL, seed=0):
    """(mean over seeds of accuracy B - A, low, high) from several seeds' paired test sets
    ``[(correct_a, correct_b, speakers), ...]``: each resample draws speakers with replacement
    within every seed and averages the seeds' differences (test-sampling noise of the mean)."""
    rng = np.random.default_rng(seed)
    draws, point = np.zeros(n_resamples), 0.0
    for a, b, speakers in pairs:
        _, (ca, cb), n = _per_speaker([np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)], speakers)
        w = rng.multinomial(len(n), np.full(len(n), 1.0 / len(n)), size=n_resamples).astype(np.float64)
        draws += 100.0 * (w @ (cb - ca)) / (w @ n)
        point += 100.0 * (cb.sum() - ca.sum()) / n.sum()
    k = len(pairs)
    lo, hi = np.percentile(draws / k, [50 * (1 - level), 100 - 50 * (1 - level)])
    return point / k, float(lo), float(hi)


def eer_interval(scores, labels, enrol_speakers, test_speakers, n_resamples=N_RESAMPLES, level=LEVEL, seed=0):
    """(EER %, low, high): speakers drawn with replacement; each trial weighted by the number
    of draws of its enrolment speaker times that of its test speaker."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
    point = 100 * eer(scores, labels)[0]
    spk, inv = np.unique(np.r_[np.asarray(enrol_speakers), np.asarray(test_speakers)], return_inverse=True)
    e_idx, t_idx = inv[: len(scores)], inv[len(scores):]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        draws = rng.multinomial(len(spk), np.full(len(spk), 1.0 / len(spk))).astype(np.float64)
        w = draws[e_idx] * draws[t_idx]
        try:
            values.append(100 * eer(None, None, operating_points(scores, labels, w))[0])
        except ValueError:  # a draw with no target (or no non-target) trial left: no EER
            continue
    if not values:
        return point, point, point
    lo, hi = np.percentile(values, [50 * (1 - level), 100 - 50 * (1 - level)])
    return point, float(lo), float(hi)


def over_seeds(values, level=LEVEL):
    """{n, mean, sd, low, high} of one figure over seeds (sd and interval need two seeds)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    if v.size == 0:
        return None
    out = {"n": int(v.size), "mean": float(v.mean()), "sd": None, "low": None, "high": None}
    if v.size >= 2:
        sd = float(v.std(ddof=1))
        half = float(sps.t.ppf(0.5 + level / 2, v.size - 1)) * sd / np.sqrt(v.size)
        out.update(sd=sd, low=float(out["mean"] - half), high=float(out["mean"] + half))
    return out


VERDICT_TOLERANCE = 1e-9  # an interval that touches 0 up to rounding error does not exclude 0


def verdict(low, high, higher_is_better=True):
    """'better', 'worse' or 'within noise' from an interval of a difference (B - A); an interval
    whose end is 0 up to floating-point error counts as including 0."""
    if low is None or high is None:
        return "one seed: no interval"
    if low > VERDICT_TOLERANCE:
        return "better" if higher_is_better else "worse"
    if high < -VERDICT_TOLERANCE:
        return "worse" if higher_is_better else "better"
    return "within noise"
