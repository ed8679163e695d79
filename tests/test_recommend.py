"""The comparison's Recommendation: chosen on validation, never on the test split; refusals of
runs that would silently mislead; notes above the tables."""

import json
import subprocess
import sys

import numpy as np
import pytest
from test_report import ROOT, SPEAKERS, TARGETS, acc, make_run

from ltspk.compare.comparison import aggregate, check_runs, comparison_notes, load_run
from ltspk.compare.recommend import recommend, recommendation_text
from ltspk.evaluation.records import Record, stage_document
from ltspk.runtime.atomic import write_json
from ltspk.runtime.errors import DataError

RIGHT = TARGETS.copy()
WRONG_FEW = np.array([0, 0, 1, 1, 0, 0, 0, 0])  # many right, few wrong: few 0 %, overall 50 %
HALF_FEW = np.array([0, 0, 1, 1, 2, 0, 3, 0])  # few 50 %, overall 75 %


def add_validation(folder, plain_valid, la_valid=None, eer_valid=20.0):
    """Validation records (as evaluate.py writes them) into a hand-made run."""
    path = folder / "evaluation" / "records.json"
    doc = json.loads(path.read_text())
    recs = [Record("evaluate", "speaker_id", "plain", "spkid_valid", plain_valid, role="validation"),
            Record("evaluate", "verification", "cosine", "spkid_valid", {"eer": eer_valid}, role="validation")]
    if la_valid is not None:
        recs.append(Record("evaluate", "speaker_id", "posthoc_la", "spkid_valid", la_valid, {"posthoc_tau": 1.0},
                           "validation"))
    doc["records"] += [r.__dict__ for r in recs]
    write_json(path, stage_document("evaluate", [Record(**r) for r in doc["records"]], doc["info"]))
    return folder


def val(overall, few):
    return {"overall": overall, "few": few, "many": 100.0, "medium": None, "n": 8}


def disagreeing_runs(tmp_path):
    """AAM (baseline) and an LA configuration whose post-hoc LA is best on VALIDATION but whose
    plain inference is best on TEST: the recommendation must follow validation."""
    out = []
    for seed in (1, 2, 3):
        a = make_run(tmp_path / f"aam{seed}", "demo_aam", "AAMHead", seed, WRONG_FEW, eer=10.0)
        add_validation(a, val(50, 0), eer_valid=12.0)
        la = make_run(tmp_path / f"la{seed}", "demo_la", "AAMHead", seed, RIGHT, HALF_FEW, la_tau=1.0, eer=11.0)
        # validation says: posthoc_la (few 90) > plain (few 10); the test says the opposite (50 < 100)
        add_validation(la, val(60, 10), la_valid=val(95, 90), eer_valid=9.0)
        out += [a, la]
    return out


def test_recommendation_follows_validation_not_test(tmp_path):
    runs = [load_run(d) for d in disagreeing_runs(tmp_path)]
    rows, base = aggregate(runs)
    recs = {r.goal: r for r in recommend(rows, base)}
    few = recs["few-shot speaker ID"]
    assert (few.config, few.inference) == ("demo_la", "posthoc_la")  # validation few 90 beats plain's 10
    assert few.validation_mean == pytest.approx(90) and few.test_mean == pytest.approx(50)
    # its test difference from AAM plain: few 50 - 0 on every seed -> better beyond noise
    assert few.versus["mean"] == pytest.approx(50) and "beats demo_aam plain beyond noise" in few.verdict
    # the best TEST figure (demo_la plain, few 100) is not what is recommended
    best_test = max((r for r in rows if r.task == "speaker_id"), key=lambda r: r.stats["few"]["mean"])
    assert (best_test.config, best_test.mode) == ("demo_la", "plain")
    ver = recs["verification EER"]
    assert ver.config == "demo_la" and ver.validation_mean == pytest.approx(9.0)  # lower validation EER wins
    # EER test +1.0 on every seed, with only 6 trials: worse or within noise, and said so
    assert ver.versus["mean"] == pytest.approx(1.0) and "plain" in ver.verdict
    text = recommendation_text(list(recs.values()))
    assert "chosen on validation, never on the test split" in text and "demo_la, posthoc_la" in text


def test_nothing_beats_the_baseline_is_said_plainly(tmp_path):
    folders = []
    for seed in (1, 2):
        a = make_run(tmp_path / f"aam{seed}", "demo_aam", "AAMHead", seed, HALF_FEW)
        add_validation(a, val(70, 40))
        b = make_run(tmp_path / f"la{seed}", "demo_la", "AAMHead", seed, HALF_FEW if seed == 1 else WRONG_FEW, la_tau=1.0)
        add_validation(b, val(75, 45))
        folders += [a, b]
    runs = [load_run(d) for d in folders]
    rows, base = aggregate(runs)
    few = next(r for r in recommend(rows, base) if r.metric == "few")
    assert few.config == "demo_la" and "no method beats demo_aam plain beyond noise" in few.verdict
    assert few.resolvable is not None and few.resolvable > 0


def test_baseline_best_on_validation_and_runs_without_validation(tmp_path):
    a = add_validation(make_run(tmp_path / "a", "demo_aam", "AAMHead", 1, HALF_FEW), val(90, 80))
    b = add_validation(make_run(tmp_path / "b", "demo_la", "AAMHead", 1, RIGHT, la_tau=1.0), val(60, 10))
    c = make_run(tmp_path / "c", "demo_tde", "CausalNormHead", 1, RIGHT)  # evaluated before validation records
    runs = [load_run(d) for d in (a, b, c)]
    rows, base = aggregate(runs)
    few = next(r for r in recommend(rows, base) if r.metric == "few")
    assert few.is_baseline and "keep it" in few.verdict and few.without_validation == 1


def test_duplicate_seed_and_mixed_corpora_are_refused(tmp_path):
    a = make_run(tmp_path / "x", "demo_aam", "AAMHead", 1, RIGHT)
    b = make_run(tmp_path / "y", "demo_aam", "AAMHead", 1, RIGHT)
    with pytest.raises(DataError, match="would count as one seed"):
        check_runs([load_run(a), load_run(b)])
    c = tmp_path / "real"
    make_run(c, "folder_aam", "AAMHead", 1, RIGHT)
    doc = json.loads((c / "evaluation" / "records.json").read_text())
    doc["info"].update(corpus="folder", synthetic=False, data_folder="/data/dspspeech20")
    write_json(c / "evaluation" / "records.json", doc)
    runs = [load_run(a), load_run(c)]
    with pytest.raises(DataError, match="different corpora.*folder \\(dspspeech20\\).*synthetic"):
        check_runs(runs)
    assert check_runs(runs, allow_mixed_corpora=True) == ["folder (dspspeech20)", "synthetic"]
    notes = comparison_notes(runs)
    assert any("DIFFERENT corpora" in n for n in notes) and not any("All figures are on the SYNTHETIC" in n for n in notes)
    assert any("One seed only" in n for n in notes)


def test_empty_group_is_said_above_the_table(tmp_path):
    a = make_run(tmp_path / "a", "demo_aam", "AAMHead", 1, RIGHT)
    doc = json.loads((a / "evaluation" / "records.json").read_text())
    doc["info"]["shot_group_sizes"] = {"many": 2, "medium": 0, "few": 2}
    write_json(a / "evaluation" / "records.json", doc)
    notes = comparison_notes([load_run(a)])
    assert any("medium-shot group is EMPTY" in n for n in notes)


def test_compare_cli_prints_the_recommendation_and_writes_json(tmp_path):
    folders = disagreeing_runs(tmp_path)
    out = tmp_path / "cmp"
    r = subprocess.run([sys.executable, "recipes/compare.py", *map(str, folders), "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    tail = r.stdout.strip().splitlines()
    assert any(line.startswith("Recommendation (chosen on validation") for line in tail[-8:])
    rec = json.loads((out / "recommendation.json").read_text())
    assert [x["goal"] for x in rec["recommendations"]] == ["few-shot speaker ID", "overall speaker ID", "verification EER"]
    md = (out / "comparison.md").read_text()
    assert md.index("### Recommendation") < md.index("### Speaker ID by shot group")
    r = subprocess.run([sys.executable, "recipes/compare.py", str(folders[0]), str(folders[0]), "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "would count as one seed" in r.stderr


def test_speakers_and_targets_are_the_report_fixtures():
    assert len(SPEAKERS) == len(TARGETS) == 8 and acc(TARGETS)["overall"] == 100


def test_plots_keep_one_colour_per_method_and_name_the_corpus(tmp_path, monkeypatch):
    import matplotlib.colors as mcolors

    from ltspk.compare import plots

    captured = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: captured.append(fig))
    a = make_run(tmp_path / "a", "demo_aam", "AAMHead", 1, RIGHT)
    b = make_run(tmp_path / "b", "demo_la", "AAMHead", 1, HALF_FEW, RIGHT, la_tau=1.0)
    for order in ([a, b], [b]):  # posthoc_la is the 2nd family in one figure, the 1st... same colour in both
        runs = [load_run(d) for d in order]
        rows, _ = aggregate(runs)
        plots.plot_shot_groups(rows, tmp_path / "x.png", plots.context(runs))
    colours = []
    for fig in captured:
        legend = fig.legends[0]
        names = [t.get_text() for t in legend.get_texts()]
        patch = legend.get_patches()[names.index("posthoc_la (stage 1)")]
        colours.append(mcolors.to_hex(patch.get_facecolor()))
        assert "SYNTHETIC corpus" in fig._suptitle.get_text() and "seed" in fig._suptitle.get_text()
    assert colours[0] == colours[1] == plots.METHOD_STYLE["posthoc_la"][0].lower()
