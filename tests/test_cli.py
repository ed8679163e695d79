"""The preparation and summary command lines, run as a user would."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import recipe_module, write_audio

ROOT = Path(__file__).resolve().parents[1]


def run(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT)


def test_prepare_synthetic_and_summary(tmp_path):
    r = run("recipes/prepare.py", "synthetic", "--prepared_folder", str(tmp_path / "prep"), "--n_train_speakers", "6",
            "--max_utts", "10", "--shot_many_above", "6", "--shot_few_below", "4", "--holdout_per_speaker", "1")
    assert r.returncode == 0, r.stderr
    assert "shot groups" in r.stdout and (tmp_path / "prep" / "counts.png").stat().st_size > 1000
    info = json.loads((tmp_path / "prep" / "counts.json").read_text())
    assert info["n_speakers"] == 6 and info["shot_thresholds"]["many_above"] == 6
    # only the generator's parameters given are recorded, as an hparams file's corpus_options holds them
    fp = json.loads((tmp_path / "prep" / "prepared.json").read_text())
    assert fp["corpus_options"] == {"n_train_speakers": 6, "max_utts": 10} and fp["options"]["holdout_per_speaker"] == 1
    r = run("recipes/summary.py", str(tmp_path / "prep"), "--plot", str(tmp_path / "c.png"))
    assert r.returncode == 0 and "imbalance" in r.stdout and (tmp_path / "c.png").exists()


def test_cli_errors_are_one_line(tmp_path):
    r = run("recipes/prepare.py", "voxceleb", "--data_folder", str(tmp_path / "missing"),
            "--prepared_folder", str(tmp_path / "p"))
    assert r.returncode != 0
    assert "error:" in r.stderr and "no VoxCeleb1 audio" in r.stderr and "Traceback" not in r.stderr
    r = run("recipes/prepare.py", str(tmp_path / "missing.yaml"), "--data_folder", str(tmp_path))
    assert r.returncode != 0 and "missing.yaml: hparams file not found" in r.stderr and "Traceback" not in r.stderr
    r = run("recipes/summary.py", str(tmp_path))
    assert r.returncode != 0 and "counts.json: file not found" in r.stderr


def option_blocks(text):
    """Each option's entry of an argparse help text: its line and the indented lines under it."""
    blocks = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            blocks.append(line)
        elif blocks and re.match(r"^ {6,}\S", line):
            blocks[-1] += " " + line.strip()
    return [b for b in blocks if not b.lstrip().startswith("-h, --help")]


def test_prepare_help_names_both_ways_of_calling_it():
    r = run("recipes/prepare.py", "--help")
    assert r.returncode == 0, r.stderr
    assert "python recipes/prepare.py HPARAMS.yaml [--data_folder DIR] [--prepared_folder DIR]" in r.stdout
    for corpus in ("voxceleb", "cnceleb", "librispeech", "folder", "synthetic"):
        assert f"python recipes/prepare.py {corpus}" in r.stdout


CORPUS_HELP = {  # a few exact strings of each sub-command's help: the hparams key first, the old spelling after it
    "voxceleb": ["--data_folder DIR, --vox1 DIR", "--vox2_folder DIR, --vox2 DIR", "--train_sets SET [SET ...], "
                 "--train-sets SET [SET ...]", "'none' for no trials (default: O)"],
    "cnceleb": ["--data_folder DIR, --cn1 DIR", "--cn2_folder DIR, --cn2 DIR", "--concat_min_seconds S\n",
                "The cnceleb_* hparams turn it on with 5 s, as WeSpeaker (default: None)"],
    "librispeech": ["--data_folder DIR, --data DIR", "subsets to train on (default: train-clean-100)",
                    "--n_trials N, --n-trials N", "generated trials (default: 20000)"],
    "folder": ["--data_folder DIR, --data DIR", "--session_pattern RE, --session-pattern RE",
               "--verification_speakers N, --verification-speakers N", "--trials FILE "],
    "synthetic": ["--data_folder DIR, --corpus-dir DIR", "--n_train_speakers N, --speakers N",
                  "(a long tail of utterance counts) (default: 48)", "--imbalance X, --corpus-imbalance X",
                  "(default: 40.0)"],
}


@pytest.mark.parametrize("corpus", sorted(CORPUS_HELP))
def test_prepare_subcommand_help_lists_every_option_with_its_default(corpus, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option
    with pytest.raises(SystemExit) as e:
        recipe_module("prepare").main([corpus, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    blocks = option_blocks(out)
    assert len(blocks) >= 17  # 14 shared options and the corpus's own
    for block in blocks:
        assert re.match(r"^  --[a-z0-9_]+[ ,]", block + " "), block  # the hparams key's spelling first
        assert "(default: " in block or "(required)" in block, block
    for text in CORPUS_HELP[corpus] + [
        "--prepared_folder DIR, --save DIR", "--holdout_per_speaker N|auto, --holdout N|auto",
        "at least 1 (default: auto)", "--holdout_by {session,utterance}", "(default: session)",
        "--valid_per_speaker N|auto, --valid N|auto", "--imbalance_factor X, --imbalance-factor X", "(default: None)",
        "--shot_many_above N|auto, --many-above N|auto", "--shot_few_below N|auto, --few-below N|auto",
        "--shot_quantiles LOW HIGH, --quantiles LOW HIGH", "--prep_workers N, --workers N",
        "threads probing audio headers (default: 8)", "--verify_samples, --verify-samples",
        "--min_seconds S, --min-seconds S", "shorter files are bad (default: 0.1)", "--seed N ",
        "--on_bad_file {skip,raise}, --on-bad-file {skip,raise}", "or stop at it (default: skip)",
    ]:
        assert text in out, text


def speaker_folders(root):
    """Six speakers of short tones, <speaker>/<speaker>-<word>-<take>.wav, a long tail of counts."""
    seed = 0
    for spk, n in {"amy": 9, "bob": 7, "cat": 6, "dan": 5, "eve": 5, "fay": 4}.items():
        for k in range(n):
            seed += 1
            write_audio(root / spk / f"{spk}-w{k % 3}-{k}.wav", 0.3, seed=seed)
    return root


TINY_FOLDER_YAML = """\
seed: 7
corpus: folder
data_folder: !PLACEHOLDER
output_folder: !PLACEHOLDER
prepared_folder: !ref <output_folder>/prepared
session_pattern: '^[^-]+-(?P<session>[^-]+)-'
verification_speakers: 2
trials: null
n_trials: 40
imbalance_factor: null
holdout_per_speaker: 1
valid_per_speaker: 1
shot_many_above: 6
shot_few_below: 4
"""


def test_prepare_from_hparams_file_as_the_subcommand(tmp_path):
    """`prepare.py HPARAMS.yaml --key VALUE` prepares what the sub-command prepares with the same values, in
    either spelling: the same manifests, and the same fingerprint (so that training reuses either)."""
    data = speaker_folders(tmp_path / "speakers")
    yaml = tmp_path / "tiny_folder.yaml"
    yaml.write_text(TINY_FOLDER_YAML)
    r = run("recipes/prepare.py", str(yaml), "--data_folder", str(data), "--output_folder", str(tmp_path / "run"),
            "--holdout_per_speaker", "2")  # an override, as training takes it
    assert r.returncode == 0, r.stderr[-3000:]
    assert "shot groups" in r.stdout
    r = run("recipes/prepare.py", "folder", "--data_folder", str(data), "--prepared_folder", str(tmp_path / "new"),
            "--session_pattern", "^[^-]+-(?P<session>[^-]+)-", "--verification_speakers", "2", "--n_trials", "40",
            "--holdout_per_speaker", "2", "--valid_per_speaker", "1", "--shot_many_above", "6",
            "--shot_few_below", "4", "--seed", "7")
    assert r.returncode == 0, r.stderr[-3000:]
    r = run("recipes/prepare.py", "folder", "--data", str(data), "--save", str(tmp_path / "old"),  # the old spelling
            "--session-pattern", "^[^-]+-(?P<session>[^-]+)-", "--verification-speakers", "2", "--n-trials", "40",
            "--holdout", "2", "--valid", "1", "--many-above", "6", "--few-below", "4", "--seed", "7")
    assert r.returncode == 0, r.stderr[-3000:]
    folders = [tmp_path / "run" / "prepared", tmp_path / "new", tmp_path / "old"]
    fps = [json.loads((f / "prepared.json").read_text()) for f in folders]
    assert fps[0]["options"]["holdout_per_speaker"] == 2 and fps[0]["corpus_options"]["n_trials"] == 40
    assert fps[1] == fps[0] and fps[2] == fps[0]
    for name in ("train.csv", "spkid_test.csv", "spkid_valid.csv", "verification.csv", "trials.txt"):
        texts = [(f / name).read_text() for f in folders]
        assert texts[0] and texts[1] == texts[0] and texts[2] == texts[0], name


def test_prepare_cnceleb_passes_concat_min_seconds(cn_trees, tmp_path):
    cn1, cn2 = cn_trees
    r = run("recipes/prepare.py", "cnceleb", "--data_folder", str(cn1), "--cn2_folder", str(cn2), "--prepared_folder",
            str(tmp_path / "p"), "--holdout_per_speaker", "1", "--valid_per_speaker", "0", "--concat_min_seconds", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    fp = json.loads((tmp_path / "p" / "prepared.json").read_text())
    assert fp["corpus_options"] == {"cn2_folder": str(cn2), "concat_min_seconds": 1.0}
    assert "concat" in json.loads((tmp_path / "p" / "counts.json").read_text())


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "retrain_classifier.py"])
def test_recipe_help_describes_the_recipe_and_its_keys(script):
    from ltspk.cli.help import MAIN_KEYS
    from ltspk.train.hparams import known_keys

    assert set(MAIN_KEYS) <= known_keys()
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / script), "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "Main hparams keys" in r.stdout and "--tde_alphas" in r.stdout
    assert f"python recipes/{script}" in r.stdout and "--noprogressbar" in r.stdout


def test_no_torchvision_notice_once_ltspk_is_imported_first():
    code = "import ltspk, speechbrain.utils.train_logger"  # the notice comes from SpeechBrain's train_logger
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "torchvision" not in r.stderr


def test_identify_enrol_options_share_the_hparams_names_and_show_defaults():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "identify.py"), "enrol", "--help"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    blocks = option_blocks(r.stdout)
    for name in ("--holdout_per_speaker", "--valid_per_speaker", "--holdout_by", "--session_pattern", "--shot_many_above",
                 "--shot_few_below", "--shot_quantiles", "--imbalance_factor", "--target_far", "--reject_by", "--batch_size"):
        block = next((b for b in blocks if b.lstrip().startswith(name + " ") or b.lstrip().startswith(name + ",")), None)
        assert block is not None, name
        assert "(default: " in block or "(required)" in block, block
    assert all("(default: " in b or "(required)" in b for b in blocks if not b.lstrip().startswith("-h"))
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "identify.py"), "enrol", "--embedder", "x", "--data", "y",
                        "--out", "z", "--shot_many_abve", "3"], capture_output=True, text=True)
    assert r.returncode == 2 and "did you mean --shot_many_above?" in r.stderr


def test_prepare_typo_names_the_option_by_its_hparams_key():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "prepare.py"), "folder", "--data_folder", "x",
                        "--prepared_folder", "y", "--many_abov", "3"], capture_output=True, text=True)
    assert r.returncode == 2 and "did you mean --shot_many_above?" in r.stderr
