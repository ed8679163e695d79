"""Calibration of verification scores: Cllr, min Cllr, actual DCF by hand; logistic calibration on a known answer."""

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import norm

from ltspk.evaluation.calibration import LogisticCalibration, act_dcf, bayes_threshold, calibrate_trials, cllr, min_cllr, pav_llrs
from ltspk.evaluation.metrics import min_dcf

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_cllr_by_hand():
    tar, non = [1.0, 2.0], [-1.0, 0.0]
    expected = 0.5 * (np.mean([math.log2(1 + math.exp(-s)) for s in tar])
                      + np.mean([math.log2(1 + math.exp(s)) for s in non]))
    assert cllr(tar + non, [1, 1, 0, 0]) == pytest.approx(expected, rel=1e-12)
    assert cllr([0.0] * 4, [1, 0, 1, 0]) == pytest.approx(1.0)  # "always s = 0" costs 1 bit
    assert cllr([50.0, -50.0], [1, 0]) == pytest.approx(0.0, abs=1e-20)
    assert cllr([np.inf, -np.inf], [1, 0]) == 0.0  # PAV's infinite LLRs are handled exactly


def test_min_cllr_pav_by_hand():
    # sorted labels 0 1 0 1: PAV pools the middle pair -> posteriors 0, .5, .5, 1 -> LLRs -inf, 0, 0, +inf
    llr = pav_llrs([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1])
    assert llr[0] == -np.inf and llr[3] == np.inf and llr[1:3] == pytest.approx([0.0, 0.0])
    # targets {0, +inf}: (1 + 0) / 2; non-targets {-inf, 0}: (0 + 1) / 2; Cllr = 0.5
    assert min_cllr([1.0, 2.0, 3.0, 4.0], [0, 1, 0, 1]) == pytest.approx(0.5)
    assert min_cllr([0.1, 0.2, 0.7, 0.9], [0, 0, 1, 1]) == pytest.approx(0.0)
    # equal scores are pooled (never split): one target and one non-target at 0.5 -> LLR 0 for both
    assert min_cllr([0.5, 0.5], [1, 0]) == pytest.approx(1.0)


def test_act_dcf_by_hand():
    llr, lab = [3.0, -1.0, -3.0, 0.5], [1, 1, 0, 0]
    # p = 0.1: theta = -logit(0.1) = ln 9 = 2.197; P_miss = 1/2 (-1 < theta), P_fa = 0 -> 0.1 * 0.5 / 0.1
    assert bayes_threshold(0.1) == pytest.approx(math.log(9))
    assert act_dcf(llr, lab, 0.1) == pytest.approx(0.5)
    # p = 0.5: theta = 0; P_miss = 1/2, P_fa = 1/2 (0.5 >= 0) -> (0.25 + 0.25) / 0.5
    assert act_dcf(llr, lab, 0.5) == pytest.approx(1.0)
    # costs move the threshold: C_miss = 9, p = 0.1 -> theta = ln(0.9 / 0.9) = 0; P_miss 1/2, P_fa 1/2
    # -> (9 * .1 * .5 + .9 * .5) / min(.9, .9) = 1.0
    assert act_dcf(llr, lab, 0.1, c_miss=9.0) == pytest.approx(1.0)
    # an LLR exactly at the threshold is accepted (as metrics accept scores >= t)
    assert act_dcf([0.0, -5.0], [1, 0], 0.5) == 0.0


def _gaussian_trials(n_tar, n_non):
    """Targets N(1, 1), non-targets N(-1, 1) at evenly spaced quantiles: true LLR(s) = 2 s."""
    tar = 1 + norm.ppf((np.arange(n_tar) + 0.5) / n_tar)
    non = -1 + norm.ppf((np.arange(n_non) + 0.5) / n_non)
    return np.r_[tar, non], np.r_[np.ones(n_tar, int), np.zeros(n_non, int)]


@pytest.mark.parametrize("n_tar,n_non", [(2000, 2000), (500, 4000)])
def test_logistic_calibration_recovers_the_known_llr(n_tar, n_non):
    s, lab = _gaussian_trials(n_tar, n_non)
    raw = 3 * s + 1  # an affine distortion: LLR = 2 (raw - 1) / 3
    cal = LogisticCalibration.fit(raw, lab)  # prior-weighted: the class proportions do not bias it
    assert cal.a == pytest.approx(2 / 3, rel=0.03) and cal.b == pytest.approx(-2 / 3, abs=0.03)
    np.testing.assert_allclose(cal(raw), 2 * s, atol=0.1)
    # calibrated: Cllr close to the best monotone mapping's; raw scores cost more
    assert cllr(cal(raw), lab) - min_cllr(raw, lab) < 0.02
    assert cllr(raw, lab) > cllr(cal(raw), lab) + 0.05
    # the Bayes decision on calibrated LLRs is near the minimum cost
    assert act_dcf(cal(raw), lab, 0.05) - min_dcf(raw, lab, 0.05)[0] < 0.05


def test_calibrate_cli(tmp_path):
    s, lab = _gaussian_trials(300, 600)
    (tmp_path / "dev.txt").write_text("".join(f"{3 * v + 1} {y}\n" for v, y in zip(s, lab)))
    np.savez(tmp_path / "eval.npz", scores=3 * s + 1, labels=lab)
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "identify.py"), "calibrate", "--dev",
                        str(tmp_path / "dev.txt"), "--eval", str(tmp_path / "eval.npz"), "--out", str(tmp_path / "c.json")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads((tmp_path / "c.json").read_text())
    _, ref = calibrate_trials(3 * s + 1, lab, 3 * s + 1, lab)
    assert out["cllr"] == pytest.approx(ref["cllr"]) and out["reported_on"] == "evaluation trials"
    assert {"act_dcf_0.01", "min_dcf_0.01", "min_cllr", "eer"} <= set(out)
    bad = subprocess.run([sys.executable, str(ROOT / "recipes" / "identify.py"), "calibrate", "--dev",
                          str(tmp_path / "missing.txt")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode != 0 and "missing.txt: score file not found" in bad.stderr


def test_calibration_refuses_one_class():
    with pytest.raises(ValueError, match="both target and non-target"):
        LogisticCalibration.fit([0.1, 0.2], [1, 1])
