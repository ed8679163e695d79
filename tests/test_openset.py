"""Open-set identification rates on tiny hand-made cases."""

import numpy as np
import pytest

from ltspk.evaluation.openset import dir_at_far, far_threshold, openset_report, oscr_auc, oscr_curve

KNOWN = [0.9, 0.8, 0.6, 0.3]
CORRECT = [True, False, True, True]
GROUPS = ["many", "many", "few", "few"]
IMPOSTOR = [0.7, 0.5, 0.2, 0.1]


def test_far_threshold_by_hand():
    # 4 impostors: FAR 25% allows 1 -> accept above the 2nd highest (0.5); FAR 0 -> above 0.7
    assert far_threshold(IMPOSTOR, 0.25) == np.nextafter(0.5, 1)
    assert far_threshold(IMPOSTOR, 0.0) == np.nextafter(0.7, 1)
    assert far_threshold(IMPOSTOR, 0.49) == np.nextafter(0.5, 1)  # floor(0.49 * 4) = 1
    assert far_threshold(IMPOSTOR, 1.0) == -np.inf
    # ties are never split: with 0.7 twice, allowing one false alarm must accept neither
    assert far_threshold([0.7, 0.7, 0.1, 0.1], 0.25) == np.nextafter(0.7, 1)


def test_dir_at_far_by_hand():
    r = dir_at_far(KNOWN, CORRECT, IMPOSTOR, 0.25, GROUPS)
    # accepted known: 0.9 (right), 0.8 (wrong), 0.6 (right) -> DIR 2/4; many 1/2, few 1/2
    assert r["overall"] == 0.5 and r["far"] == 0.25 and r["many"] == 0.5 and r["few"] == 0.5 and r["medium"] is None
    r0 = dir_at_far(KNOWN, CORRECT, IMPOSTOR, 0.0, GROUPS)
    assert r0["overall"] == 0.25 and r0["far"] == 0.0 and r0["few"] == 0.0


def test_oscr_by_hand():
    far, ccr = oscr_curve(KNOWN, CORRECT, IMPOSTOR)
    # descending: .9 K+ .8 K- .7 I .6 K+ .5 I .3 K+ .2 I .1 I
    np.testing.assert_allclose(far, [0, 0, 0, .25, .25, .5, .5, .75, 1])
    np.testing.assert_allclose(ccr, [0, .25, .25, .25, .5, .5, .75, .75, .75])
    # area: .25 * .25 + .25 * .5 + .25 * .75 + .25 * .75
    assert oscr_auc(KNOWN, CORRECT, IMPOSTOR) == pytest.approx(0.5625)
    assert oscr_auc([1.0, 1.0], [True, True], [0.0]) == pytest.approx(1.0)
    # a tie between a known and an impostor probe is one diagonal step: area of a triangle
    assert oscr_auc([0.5], [True], [0.5]) == pytest.approx(0.5)


def test_openset_report_per_group():
    rep = openset_report(KNOWN, CORRECT, GROUPS, IMPOSTOR, fars=(0.25,))
    assert rep["overall"]["dir@0.25"] == pytest.approx(50.0) and rep["overall"]["closed_set"] == pytest.approx(75.0)
    assert rep["medium"] is None and rep["many"]["n"] == 2
    # many: known .9 (right), .8 (wrong) against all impostors: area .5 (DIR 1/2 from FAR 0)
    assert rep["many"]["oscr_auc"] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="impostor"):
        openset_report(KNOWN, CORRECT, GROUPS, [])
