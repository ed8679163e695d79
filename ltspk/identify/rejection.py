"""Calibration and the rejection of unknown speakers: per method, temperature scaling (NLL on
validation), the rejection score (``prob`` or ``score``) chosen by validation OSCR area, the threshold
for ``target_far`` on validation impostor probes (simulated by leaving each probe's own speaker out
when there are no impostor speakers) and P(unknown | score); and the calibrated verification scores."""

import math

import numpy as np
import torch
import torch.nn.functional as F

from ltspk.evaluation.calibration import LogisticCalibration, calibrated_metrics
from ltspk.evaluation.openset import far_threshold, min_impostor_probes, oscr_auc, threshold_caution
from ltspk.identify.settings import REJECT_BY
from ltspk.runtime.errors import DataError


def fit_temperature(logits, y):
    """T minimising the validation NLL of softmax(z / T) (log T bounded to [-ln 1000, ln 1000])."""
    from scipy.optimize import minimize_scalar

    z, y = torch.as_tensor(np.asarray(logits, np.float64)), torch.as_tensor(np.asarray(y), dtype=torch.long)
    res = minimize_scalar(lambda lt: float(F.cross_entropy(z / math.exp(lt), y)), bounds=(-math.log(1000), math.log(1000)),
                          method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


def probabilities(logits, temperature):
    return torch.softmax(torch.as_tensor(np.asarray(logits, np.float64)) / temperature, dim=1).numpy()


def reject_scores(logits, temperature, by, leave_out=None):
    """The rejection score per probe; ``leave_out`` (a class per probe) scores it as if that
    speaker had never been enrolled (simulated impostors)."""
    z = np.array(logits, dtype=np.float64)
    if leave_out is not None:
        z[np.arange(len(z)), np.asarray(leave_out)] = -np.inf
    if by == "score":
        return z.max(1)
    return probabilities(z, temperature).max(1)


def unknown_calibration(known_scores, impostor_scores):
    """P(unknown | rejection score): logistic regression of enrolled (validation probes of enrolled
    speakers) against unknown (impostor probes) on the rejection score, both classes weighing half
    (``LogisticCalibration``, prior 0.5): its output is the log-likelihood ratio of "enrolled"; None
    where it cannot be fitted. ``p_unknown`` turns it into a probability at a prior."""
    k, i = np.asarray(known_scores, np.float64), np.asarray(impostor_scores, np.float64)
    if not len(k) or not len(i) or not (np.isfinite(k).all() and np.isfinite(i).all()):
        return None
    cal = LogisticCalibration.fit(np.r_[k, i], np.r_[np.ones(len(k), int), np.zeros(len(i), int)])
    return {**cal.to_dict(), "n_known_probes": int(len(k)), "n_impostor_probes": int(len(i))}


def p_unknown(calibration, scores, prior_enrolled=0.5):
    """P(the caller is not enrolled | rejection score) of ``unknown_calibration``'s fit, at a prior
    ``prior_enrolled`` that a caller is enrolled: 1 - sigmoid(llr + logit(prior_enrolled))."""
    if not 0 < prior_enrolled < 1:
        raise DataError("prior_enrolled", f"must be in (0, 1), got {prior_enrolled}")
    llr = calibration["a"] * np.asarray(scores, np.float64) + calibration["b"]
    return 1.0 / (1.0 + np.exp(llr + math.log(prior_enrolled / (1 - prior_enrolled))))


def impostor_scores(z_known, y_known, z_imp, temperature, by):
    """(scores, simulated?): real impostor probes where there are any, else leave-own-speaker-out."""
    if len(z_imp):
        return reject_scores(z_imp, temperature, by), False
    if z_known.shape[1] < 2:
        raise DataError("impostors", "simulated impostors need at least 2 enrolled speakers")
    return reject_scores(z_known, temperature, by, leave_out=y_known), True


def calibrate_method(z_v, yv, z_iv, params, sweep, settings):
    """One method's entry of the model document, from its validation logits ``z_v`` (labels ``yv``)
    and validation impostor logits ``z_iv``: temperature, rejection score, threshold, P(unknown)."""
    temp = fit_temperature(z_v, yv)
    correct_v = z_v.argmax(1) == yv
    oscr, imps = {}, {}
    for by in REJECT_BY:
        imps[by] = impostor_scores(z_v, yv, z_iv, temp, by)
        oscr[by] = oscr_auc(reject_scores(z_v, temp, by), correct_v, imps[by][0])
    by = settings.reject_by if settings.reject_by != "auto" else max(REJECT_BY, key=lambda b: (oscr[b], b == "prob"))
    imp, simulated = imps[by]
    known_v = reject_scores(z_v, temp, by)
    return {"params": params, "valid_accuracy": 100 * float(correct_v.mean()), "temperature": temp,
            "reject_by": by, "valid_oscr_auc": {k: 100 * v for k, v in oscr.items()},
            "threshold": far_threshold(imp, settings.target_far), "threshold_impostors":
            ("simulated (own speaker left out)" if simulated else "validation impostor speakers"),
            "n_threshold_impostor_probes": int(len(imp)),
            "min_threshold_impostor_probes": min_impostor_probes(settings.target_far),
            "threshold_caution": threshold_caution(len(imp), settings.target_far),
            "unknown_calibration": unknown_calibration(known_v, imp),
            "validation_sweep": {f"{k:g}": 100 * v for k, v in sweep.items()}}


def verification_calibration(ncm, emb, y, m):
    """Trials: each validation / test probe against every enrolled speaker (cosine to the NCM
    centroid; impostor probes give non-target trials only). Logistic calibration fitted on the
    validation trials, calibrated metrics on the test trials."""
    def trials(known, imp):
        z = ncm.logits(emb[known])
        lab = np.zeros_like(z, dtype=int)
        lab[np.arange(len(z)), y[known]] = 1
        if imp.any():
            zi = ncm.logits(emb[imp])
            z, lab = np.r_[z, zi], np.r_[lab, np.zeros_like(zi, dtype=int)]
        return z.ravel(), lab.ravel()

    dev_s, dev_l = trials(m["valid"], m["impostor_valid"])
    ev_s, ev_l = trials(m["test"], m["impostor_test"])
    cal = LogisticCalibration.fit(dev_s, dev_l)
    return {"scores": "cosine to the NCM speaker centroid", "calibration": cal.to_dict(), "dev_trials": int(dev_s.size),
            **calibrated_metrics(cal(ev_s), ev_l)}
