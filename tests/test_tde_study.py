"""The TDE study's aggregation on hand-made records."""

from pathlib import Path

import pytest

from ltspk.compare.comparison import Run
from ltspk.compare.tde_study import markdown, study
from ltspk.evaluation.records import Record


def _run(seed, cos_few, valid_mean, plain_few, tde_few, alpha):
    recs = [
        Record("evaluate", "speaker_id", "plain", "spkid_test", {"many": 100.0, "medium": 90.0, "few": plain_few,
                                                                 "overall": 90.0}),
        Record("evaluate", "speaker_id", "tde", "spkid_test", {"many": 100.0, "medium": 90.0, "few": tde_few,
                                                               "overall": 91.0}, {"tde_alpha": alpha}, "headline",
               {"split": "spkid_valid"}),
        Record("evaluate", "speaker_id", "posthoc_la", "spkid_test", {"many": 99.0, "medium": 90.0, "few": 80.0,
                                                                      "overall": 89.0}, {"posthoc_tau": 1.0},
               "headline", {"split": "spkid_valid"}),
        Record("evaluate", "verification", "cosine", "trials", {"eer": 10.0 + seed}),
        Record("evaluate", "diagnostic", "cos_to_direction", "spkid_test",
               {"few": {"mean": cos_few}, "overall": {"mean": 0.1}}, role="diagnostic"),
        Record("evaluate", "diagnostic", "cos_to_direction", "spkid_valid",
               {"overall": {"mean": valid_mean}, "suggested": {"tde_alpha": 1 / valid_mean}}, role="diagnostic"),
    ]
    info = {"experiment": "x_tde", "seed": seed, "optimizer": "SGD", "lr_schedule": "CosineScheduler",
            "head_settings": {"feature": "relu", "mu": "lr_tied"}}
    return Run(Path(f"/nonexistent/{seed}"), info, recs, {})


def test_study_by_hand():
    (row,) = study([_run(1, 0.2, 0.25, 60.0, 70.0, 1.0), _run(2, 0.4, 0.5, 64.0, 66.0, 0.5)])
    assert row.cos["few"]["mean"] == pytest.approx(0.3) and row.cos["few"]["sd"] == pytest.approx(0.1414, abs=1e-4)
    assert row.alpha_chosen == [1.0, 0.5] and row.alpha_rule == pytest.approx([4.0, 2.0])
    # TDE - plain few: +10 and +2 -> mean 6, sd 8 / sqrt(2), t interval with 1 df: 6 +- 12.706 * sd / sqrt(2)
    gain = row.tde_gain["few"]
    assert gain["mean"] == pytest.approx(6.0) and gain["low"] == pytest.approx(6 - 12.7062 * 4, abs=1e-3)
    assert gain["verdict"] == "within noise"
    assert row.eer["mean"] == pytest.approx(11.5) and row.settings["feature"] == "relu"
    text = markdown([row])
    assert "| x_tde | SGD | CosineScheduler | relu | lr_tied | 2 |" in text and "+6.00" in text


def test_study_refuses_runs_without_diagnostics():
    from ltspk.runtime.errors import DataError

    r = _run(1, 0.2, 0.25, 60.0, 70.0, 1.0)
    r.records = [x for x in r.records if x.task != "diagnostic"]
    with pytest.raises(DataError, match="cos_to_direction"):
        study([r])


def test_plot_defines_cos_and_marks_alpha_zero(monkeypatch, tmp_path):
    from ltspk.compare import plots, tde_study

    figs = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: figs.append(fig))
    rows = study([_run(1, 0.2, 0.25, 60.0, 60.0, 0.0), _run(2, 0.4, 0.5, 64.0, 64.0, 0.0)])
    tde_study.plot(rows, tmp_path / "x.png", "TDE study: somewhere")
    texts = [t.get_text() for t in figs[0].texts] + [t.get_text() for ax in figs[0].axes for t in ax.texts]
    assert any("cos(x, d): cosine between a test feature" in t for t in texts)
    assert any("TDE = plain" in t for t in texts) and figs[0]._suptitle.get_text() == "TDE study: somewhere"
