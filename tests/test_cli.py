"""The preparation and summary command lines, run as a user would."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)


def test_prepare_synthetic_and_summary(tmp_path):
    r = run("recipes/prepare.py", "synthetic", "--save", str(tmp_path / "prep"), "--speakers", "6",
            "--max-utts", "10", "--many-above", "6", "--few-below", "4", "--holdout", "1")
    assert r.returncode == 0, r.stderr
    assert "shot groups" in r.stdout and (tmp_path / "prep" / "counts.png").stat().st_size > 1000
    info = json.loads((tmp_path / "prep" / "counts.json").read_text())
    assert info["n_speakers"] == 6 and info["shot_thresholds"]["many_above"] == 6
    r = run("recipes/summary.py", str(tmp_path / "prep"), "--plot", str(tmp_path / "c.png"))
    assert r.returncode == 0 and "imbalance" in r.stdout and (tmp_path / "c.png").exists()


def test_cli_errors_are_one_line(tmp_path):
    r = run("recipes/prepare.py", "voxceleb", "--vox1", str(tmp_path / "missing"), "--save", str(tmp_path / "p"))
    assert r.returncode != 0
    assert "error:" in r.stderr and "no VoxCeleb1 audio" in r.stderr and "Traceback" not in r.stderr
    r = run("recipes/summary.py", str(tmp_path))
    assert r.returncode != 0 and "counts.json: file not found" in r.stderr


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "retrain_classifier.py"])
def test_recipe_help_describes_the_recipe_and_its_keys(script):
    from ltspk.hparams import MAIN_KEYS, known_keys

    assert set(MAIN_KEYS) <= known_keys()
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / script), "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "Main hparams keys" in r.stdout and "--tde_alphas" in r.stdout
    assert f"python recipes/{script}" in r.stdout and "--noprogressbar" in r.stdout


def test_no_torchvision_notice_once_ltspk_is_imported_first():
    code = "import ltspk, speechbrain.utils.train_logger"  # the notice comes from SpeechBrain's train_logger
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "torchvision" not in r.stderr
