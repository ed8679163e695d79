"""The 'unknown' threshold says how many impostor probes it rests on, warns when they are few, reports the
test false-alarm rate with a 95% interval, and predict gives an explicit probability of 'unknown'."""

import logging
import math

import numpy as np
import pytest
from test_identify import FAST, _synthetic_speakers, write_sb_folder

from ltspk.evaluation.openset import far_at_threshold, min_impostor_probes, rate_interval, threshold_caution

pytestmark = pytest.mark.usefixtures("one_thread")


def test_clopper_pearson_interval_by_hand():
    # k = 0: [0, 1 - (alpha/2)^(1/n)]; k = n: [(alpha/2)^(1/n), 1]; k = 1: low = 1 - (1 - alpha/2)^(1/n)
    low, high = rate_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 20), rel=1e-9)  # 0.1684
    low, high = rate_interval(20, 20)
    assert low == pytest.approx(0.025 ** (1 / 20), rel=1e-9) and high == 1.0
    low, high = rate_interval(1, 20)
    assert low == pytest.approx(1 - 0.975 ** (1 / 20), rel=1e-9)  # 0.00127
    # k = n - 1: high = (1 - alpha/2)^(1/n)
    assert rate_interval(19, 20)[1] == pytest.approx(0.975 ** (1 / 20), rel=1e-9)
    assert rate_interval(0, 0) == (0.0, 1.0)


def test_far_at_threshold_by_hand():
    r = far_at_threshold([0.9, 0.5, 0.5, 0.1], 0.5)  # scores >= 0.5 accepted: 3 of 4
    assert r["far"] == 0.75 and r["false_alarms"] == 3 and r["n_impostor_probes"] == 4
    assert r["far_ci95"][1] == pytest.approx(0.975 ** (1 / 4), rel=1e-9)


def test_few_impostor_probes_behind_a_threshold_are_a_caution():
    assert min_impostor_probes(0.05) == 400 and min_impostor_probes(0.01) == 2000  # 20 expected false alarms
    text = threshold_caution(20, 0.05)
    # 20 probes at 5%: 1 false alarm allowed; Clopper-Pearson of 1/20 = [0.1%, 24.9%]
    assert text.startswith("the 'unknown' threshold rests on 20 impostor probe(s) (1 false alarm(s) allowed")
    assert "[0.1%, 24.9%]" in text and "400 or more probes are wanted" in text
    assert threshold_caution(400, 0.05) is None


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory):
    from ltspk.embedding.embedders import SpeechBrainEmbedder
    from ltspk.identify import EnrolSettings, enrol

    tmp = tmp_path_factory.mktemp("openset")
    embedder = SpeechBrainEmbedder(write_sb_folder(tmp / "sb"))
    data = _synthetic_speakers(tmp / "data", {"a": 8, "b": 7, "c": 6, "d": 6, "x": 5, "y": 5}, seed=5)
    settings = EnrolSettings(test_per_speaker=2, valid_per_speaker=2, impostors="x,y", **FAST)
    info, report = enrol(embedder, data, tmp / "m", settings)
    return tmp / "m", embedder, data, info, report


def test_threshold_records_its_probes_and_cautions(enrolled):
    model, _, _, info, report = enrolled
    for name, m in info["methods"].items():
        n = m["n_threshold_impostor_probes"]
        assert n == 5 and m["min_threshold_impostor_probes"] == 400  # one validation impostor speaker, 5 files
        assert m["threshold_caution"] == threshold_caution(n, 0.05)
        at = report["test"][name]["at_deployed_threshold"]
        k, n_test = at["false_alarms"], at["n_impostor_probes"]
        assert n_test == 5 and at["far"] == k / n_test and at["far_ci95"] == list(rate_interval(k, n_test))
    text = (model / "report.md").read_text()
    assert "on 5 impostor probes: validation impostor speakers)" in text
    assert "**Caution**: the 'unknown' threshold rests on 5" in text


def test_enrol_warns_of_a_threshold_on_few_probes(tmp_path, caplog):
    from ltspk.embedding.embedders import SpeechBrainEmbedder
    from ltspk.identify import EnrolSettings, enrol

    embedder = SpeechBrainEmbedder(write_sb_folder(tmp_path / "sb"))
    data = _synthetic_speakers(tmp_path / "data", {"a": 6, "b": 5, "c": 4}, seed=3)
    with caplog.at_level(logging.WARNING, logger="ltspk.identify"):
        enrol(embedder, data, tmp_path / "m", EnrolSettings(test_per_speaker=1, valid_per_speaker=1, **FAST))
    assert "the 'unknown' threshold rests on 3 impostor probe(s)" in caplog.text  # simulated: the 3 validation probes


def test_predict_gives_an_explicit_probability_of_unknown(enrolled):
    from ltspk.identify import EnrolmentModel

    model_dir, embedder, data, info, _ = enrolled
    model = EnrolmentModel(model_dir)
    files = [data / "a" / "a-000.wav", data / "x" / "x-000.wav"]
    out = model.predict(files, embedder, top_k=6)
    cal = info["methods"][info["deployed"]["method"]]["unknown_calibration"]
    assert cal["n_impostor_probes"] == 5 and cal["prior"] == 0.5
    for r in out:
        # P(unknown) = 1 - sigmoid(a s + b) at the prior 1/2 (logit 0)
        assert r["p_unknown"] == pytest.approx(1 / (1 + math.exp(cal["a"] * r["score"] + cal["b"])), rel=1e-9)
        closed = np.array([p for _, p in r["top_if_enrolled"]])
        joint = np.array([p for _, p in r["top"]])
        assert closed.sum() == pytest.approx(1.0) and joint == pytest.approx((1 - r["p_unknown"]) * closed)
        assert joint.sum() + r["p_unknown"] == pytest.approx(1.0)
    # a prior that callers are mostly enrolled lowers P(unknown): logit(0.9) = ln 9 added to the log-odds
    r9 = model.predict(files[:1], embedder, prior_enrolled=0.9)[0]
    s = r9["score"]
    assert r9["p_unknown"] == pytest.approx(1 / (1 + math.exp(cal["a"] * s + cal["b"] + math.log(9))), rel=1e-9)
