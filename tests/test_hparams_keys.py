"""Typos in hparams files and overrides are errors naming the nearest key; shipped files pass."""

import re
from pathlib import Path

import pytest

from ltspk.hparams import HparamsError, check_keys, load_hparams

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_override_names_the_nearest_key():
    with pytest.raises(HparamsError, match=r"demo_aam.yaml: the command line sets 'samplr'.*did you mean 'sampler'"):
        load_hparams(ROOT / "hparams" / "demo_aam.yaml", {"samplr": "class"})


def test_unknown_key_in_the_file_names_the_nearest_key(tmp_path):
    text = (ROOT / "hparams" / "demo_aam.yaml").read_text().replace("loss: ce", "los: focal")
    f = tmp_path / "typo.yaml"
    f.write_text(text)
    with pytest.raises(HparamsError, match=r"typo.yaml: unknown key 'los'; did you mean 'loss'\?"):
        load_hparams(f)
    # a helper key the file itself uses through !ref is fine
    f.write_text(text.replace("los: focal", "loss: ce\nmy_rate: 0.5\nfocal_gamma: !ref <my_rate>")
                 .replace("focal_gamma: 2.0\n", "", 1))
    assert load_hparams(f)["focal_gamma"] == 0.5


@pytest.mark.parametrize("key,value,name", [("number_of_epochs", 0, "number_of_epochs"),
                                            ("eval_batch_size", -1, "eval_batch_size"),
                                            ("train_dataloader_options", {"batch_size": 0},
                                             "train_dataloader_options.batch_size")])
def test_impossible_numbers_are_refused(key, value, name):
    with pytest.raises(HparamsError, match=f"{name} must be a positive number"):
        load_hparams(ROOT / "hparams" / "demo_aam.yaml", {key: value})


@pytest.mark.parametrize("path", sorted((ROOT / "hparams").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_files_use_known_keys(path):
    text = path.read_text()
    keys = dict.fromkeys(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*):", text, re.M))
    check_keys(path, keys, text)  # raises on a key ltspk does not read


def test_one_nested_value_is_one_override():
    """hyperpyyaml merges an override mapping into the file's object: one value changes, the rest stay."""
    import speechbrain as sb

    _, _, overrides = sb.parse_arguments([str(ROOT / "hparams" / "folder_aam.yaml"), "--data_folder", "x",
                                          "--prep_options", "{holdout_per_speaker: 3}"])
    opts = load_hparams(ROOT / "hparams" / "folder_aam.yaml", overrides)["prep_options"]
    assert opts.holdout_per_speaker == 3 and opts.valid_per_speaker == 5 and opts.imbalance_factor == 20
