"""Calibrated verification scores and the metrics that judge them: Cllr, min Cllr, actual DCF.

A calibrated score is a log-likelihood ratio (natural log) s = log p(x | target) / p(x | non-target).

- ``LogisticCalibration``: s = a * score + b, fitted on a development trial list by
  prior-weighted logistic regression (scikit-learn; as in BOSARIS / the NIST SRE practice):
  targets weigh ``prior`` in total and non-targets ``1 - prior``, and the fitted log-odds
  minus logit(prior) is the LLR. Practically unregularised (C = 1e6).
- ``cllr``: 1/2 [mean_tar log2(1 + e^-s) + mean_non log2(1 + e^s)]. 1 bit for a system
  that always says s = 0; 0 for a perfect one; over 1 for a harmful one.
- ``min_cllr``: Cllr after the optimal monotone re-mapping of the scores: pool adjacent
  violators (``sklearn.isotonic.IsotonicRegression``, equal scores pooled) gives the
  posterior of each score at the empirical prior, turned into an LLR by subtracting
  logit(prior). Cllr - min Cllr is the calibration loss.
- ``act_dcf``: the DCF of Bayes decisions at the threshold theta = log(C_fa (1 - p) / (C_miss p))
  (= -logit(p) for C_miss = C_fa = 1): accept when s >= theta, normalised by
  min(C_miss p, C_fa (1 - p)) like ``ltspk.evaluation.metrics.min_dcf``. actDCF - minDCF is the
  calibration loss at that operating point.
"""

import math

import numpy as np

from ltspk.evaluation.metrics import _validate, verification_metrics

LN2 = math.log(2.0)


def _split(llrs, labels):
    s, lab = _validate_inf(llrs, labels)
    return s[lab], s[~lab]


def _validate_inf(llrs, labels):
    """As ``metrics._validate``, allowing +-inf (the PAV mapping gives infinite LLRs)."""
    s = np.asarray(llrs, dtype=np.float64).ravel()
    if np.isnan(s).any():
        raise ValueError("LLRs hold NaN")
    finite = np.where(np.isfinite(s), s, 0.0)
    _, lab = _validate(finite, labels)
    return s, lab


def cllr(llrs, labels):
    """Log-likelihood-ratio cost (bits) of natural-log LLRs; labels 1 target, 0 non-target."""
    tar, non = _split(llrs, labels)
    return float(0.5 * (np.mean(np.logaddexp(0.0, -tar)) + np.mean(np.logaddexp(0.0, non))) / LN2)


def pav_llrs(scores, labels):
    """The optimal monotone (non-decreasing) mapping of scores to LLRs, by pool adjacent violators."""
    from sklearn.isotonic import IsotonicRegression

    s, lab = _validate(scores, labels)
    post = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit_transform(
        s, lab.astype(np.float64))
    prior = lab.mean()
    with np.errstate(divide="ignore"):
        return np.log(post) - np.log1p(-post) - math.log(prior / (1 - prior))


def min_cllr(scores, labels):
    """Cllr of the PAV-calibrated scores: the Cllr no monotone calibration can beat."""
    return cllr(pav_llrs(scores, labels), labels)


def bayes_threshold(p_target, c_miss=1.0, c_fa=1.0):
    """theta = log(C_fa (1 - p) / (C_miss p)): accept when the LLR is >= theta."""
    if not 0 < p_target < 1:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")
    return math.log(c_fa * (1 - p_target) / (c_miss * p_target))


def act_dcf(llrs, labels, p_target=0.01, c_miss=1.0, c_fa=1.0):
    """Normalised actual detection cost of Bayes decisions on calibrated LLRs."""
    tar, non = _split(llrs, labels)
    theta = bayes_threshold(p_target, c_miss, c_fa)
    p_miss, p_fa = float(np.mean(tar < theta)), float(np.mean(non >= theta))
    dcf = c_miss * p_target * p_miss + c_fa * (1 - p_target) * p_fa
    return float(dcf / min(c_miss * p_target, c_fa * (1 - p_target)))


class LogisticCalibration:
    """LLR = a * score + b, fitted by prior-weighted logistic regression on development trials."""

    def __init__(self, a=1.0, b=0.0, prior=0.5):
        self.a, self.b, self.prior = float(a), float(b), float(prior)

    @classmethod
    def fit(cls, scores, labels, prior=0.5):
        from sklearn.linear_model import LogisticRegression

        if not 0 < prior < 1:
            raise ValueError(f"prior must be in (0, 1), got {prior}")
        s, lab = _validate(scores, labels)
        n_tar, n_non = int(lab.sum()), int((~lab).sum())
        w = np.where(lab, prior / n_tar, (1 - prior) / n_non) * len(s)  # targets weigh `prior` in total
        lr = LogisticRegression(C=1e6, tol=1e-10, max_iter=10_000).fit(s[:, None], lab.astype(int), sample_weight=w)
        a, c = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        return cls(a, c - math.log(prior / (1 - prior)), prior)

    def __call__(self, scores):
        return self.a * np.asarray(scores, dtype=np.float64) + self.b

    def to_dict(self):
        return {"a": self.a, "b": self.b, "prior": self.prior}

    @classmethod
    def from_dict(cls, d):
        return cls(d["a"], d["b"], d.get("prior", 0.5))


def calibrated_metrics(llrs, labels, p_targets=(0.01, 0.05), c_miss=1.0, c_fa=1.0):
    """EER %, Cllr, min Cllr, and actual / minimum DCF at each p_target, of calibrated LLRs (EER and
    minDCF by ``ltspk.evaluation.metrics.verification_metrics``)."""
    llrs = np.asarray(llrs, dtype=np.float64)
    ver = verification_metrics(llrs, labels, p_targets, c_miss=c_miss, c_fa=c_fa)
    out = {"eer": ver["eer"], "cllr": cllr(llrs, labels), "min_cllr": min_cllr(llrs, labels), "n_trials": ver["n_trials"]}
    for p in p_targets:
        out[f"act_dcf_{p:g}"] = act_dcf(llrs, labels, p, c_miss, c_fa)
        out[f"min_dcf_{p:g}"] = ver[f"min_dcf_{p:g}"]
    return out


def calibrate_trials(dev_scores, dev_labels, eval_scores=None, eval_labels=None, prior=0.5, p_targets=(0.01, 0.05),
                     c_miss=1.0, c_fa=1.0):
    """Fit on the development trials; report on the evaluation trials (or on the development
    trials themselves, flagged, when none are given)."""
    cal = LogisticCalibration.fit(dev_scores, dev_labels, prior)
    same = eval_scores is None
    scores, labels = (dev_scores, dev_labels) if same else (eval_scores, eval_labels)
    return cal, {"calibration": cal.to_dict(), "reported_on": "development trials (fitted on them: optimistic)"
                 if same else "evaluation trials", **calibrated_metrics(cal(scores), labels, p_targets, c_miss, c_fa)}
