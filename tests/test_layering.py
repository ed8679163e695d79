"""Layered hparams: a top file read by hyperpyyaml alone names ltspk's loader, a head's arguments are
keys of their own (a variant changes one value), a run folder's saved hyperparams.yaml loads again,
and run folders written with the old module paths still load."""

import io
import re
from pathlib import Path

import pytest
from hyperpyyaml import load_hyperpyyaml

from ltspk.runtime.errors import HparamsError
from ltspk.runtime.fingerprint import object_settings
from ltspk.runtime.legacy import modern_paths
from ltspk.train.hparams import load_hparams
from ltspk.train.layering import hparams_text
from ltspk.train.run_folder import save_hyperparams

ROOT = Path(__file__).resolve().parents[1]
LAYERED = sorted(p for p in (ROOT / "hparams").rglob("*.yaml") if "\nbase:" in "\n" + p.read_text())


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(ROOT / "hparams")))
def test_hyperpyyaml_alone_never_returns_a_part_silently(path):
    """A file whose own keys need its bases' fails at the first one (a reference or a placeholder:
    hyperpyyaml's error); any other is told to use ltspk's loader."""
    with pytest.raises((HparamsError, ValueError)) as e:
        load_hyperpyyaml(path.read_text())
    if isinstance(e.value, HparamsError):
        assert "starts from other files" in str(e.value) and "load_hparams" in str(e.value)


def test_a_top_file_of_a_base_and_a_name_is_told_to_use_ltspks_loader():
    with pytest.raises(HparamsError, match=r"starts from other files \(base: base/voxceleb.yaml, heads/tde.yaml\)"):
        load_hyperpyyaml((ROOT / "hparams" / "voxceleb_tde.yaml").read_text())


def test_every_shipped_top_file_is_layered():
    tops = sorted((ROOT / "hparams").glob("*.yaml"))
    assert tops and set(tops) <= set(LAYERED)


def test_a_variant_changes_one_value(tmp_path):
    out = {"output_folder": str(tmp_path / "o")}
    aam = load_hparams(ROOT / "hparams" / "demo_aam.yaml", out)["classifier"]
    la = load_hparams(ROOT / "hparams" / "demo_la.yaml", out)["classifier"]
    assert la.keywords == {**aam.keywords, "la_tau": 1.0}  # heads/la.yaml: aam_la_tau only
    wider = load_hparams(ROOT / "hparams" / "demo_aam.yaml", {**out, "aam_margin": 0.3})["classifier"]
    assert wider.keywords == {**aam.keywords, "margin": 0.3}
    tied = load_hparams(ROOT / "hparams" / "demo_tde.yaml", {**out, "causal_mu": "lr_tied"})["classifier"]
    assert tied.keywords["mu"] == "lr_tied"


def test_the_three_real_corpora_share_one_recipe():
    for corpus in ("voxceleb", "cnceleb", "librispeech"):
        text = (ROOT / "hparams" / "base" / f"{corpus}.yaml").read_text()
        assert "base: !apply:ltspk.train.layering.bases [ecapa_recipe.yaml]" in text
        assert "embedding_model:" not in text and "wav_augment:" not in text  # in the shared recipe only


@pytest.mark.parametrize("name", ["demo_la.yaml", "folder_tde_sgd.yaml"])
def test_a_saved_run_folder_loads_again_with_the_same_head(name, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    over = {"output_folder": str(folder), "data_folder": str(tmp_path)}
    overrides = "".join(f"{k}: {v}\n" for k, v in over.items())
    save_hyperparams(ROOT / "hparams" / name, overrides, folder)
    saved = load_hparams(folder / "hyperparams.yaml", {"output_folder": str(folder)})
    original = load_hparams(ROOT / "hparams" / name, over)
    assert object_settings(saved["classifier"]) == object_settings(original["classifier"])


def test_old_module_paths_are_read_as_todays(tmp_path):
    assert modern_paths("!new:ltspk.schedulers.CosineScheduler") == "!new:ltspk.train.schedulers.CosineScheduler"
    assert modern_paths("ltspk.embed.x ltspk.embedders.y ltspk.heads.AAMHead") == \
        "ltspk.embedding.cache.x ltspk.embedding.embedders.y ltspk.heads.AAMHead"
    assert modern_paths(modern_paths("ltspk.evaluate")) == "ltspk.evaluation.evaluate"  # idempotent
    assert modern_paths({"class": ["ltspk.losses.f"]}) == {"class": ["ltspk.train.losses.f"]}
    old = tmp_path / "hyperparams.yaml"
    old.write_text(hparams_text(ROOT / "hparams" / "folder_tde_sgd.yaml").replace("ltspk.train.", "ltspk."))
    assert "ltspk.schedulers.CosineScheduler" in old.read_text()
    h = load_hyperpyyaml(io.StringIO(hparams_text(old).split("\nbase:")[0]), {"data_folder": str(tmp_path)})
    assert type(h["lr_annealing"]).__module__ == "ltspk.train.schedulers"


def test_a_value_given_again_on_a_run_folder_reaches_what_refers_to_it(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    save_hyperparams(ROOT / "hparams" / "demo_aam.yaml",
                                            f"output_folder: {folder}\nnumber_of_epochs: 2\nimbalance_factor: none\n",
                                            folder)
    saved = folder / "hyperparams.yaml"
    h = load_hparams(saved, {"output_folder": str(folder)})
    assert h["epoch_counter"].limit == 2 and h["imbalance_factor"] is None
    h = load_hparams(saved, {"output_folder": str(folder), "number_of_epochs": 5, "aam_margin": 0.1, "lr": 0.01})
    assert h["epoch_counter"].limit == 5 and h["classifier"].keywords["margin"] == 0.1
    assert h["opt_class"].keywords["lr"] == 0.01


def test_a_resolved_run_folder_refuses_an_epoch_count_it_cannot_reach(tmp_path):
    from ltspk.train.options import TrainOptions

    text = (tmp_path / "h.yaml")
    text.write_text(hparams_text(ROOT / "hparams" / "demo_aam.yaml").replace(
        "limit: !ref <number_of_epochs>", "limit: 12"))
    h = load_hparams(text, {"output_folder": str(tmp_path / "o"), "number_of_epochs": 13})
    with pytest.raises(HparamsError, match="number_of_epochs is 13 but epoch_counter counts to 12"):
        TrainOptions.from_hparams(h)


@pytest.mark.parametrize("name, key, value, message", [
    ("demo_aam.yaml", "aam_margin", "abc", "margin must be a number, got 'abc'"),
    ("demo_aam.yaml", "aam_margin", -0.5, "margin must be >= 0 and < 1.5708, got -0.5"),
    ("demo_aam.yaml", "aam_scale", 0, "scale must be > 0, got 0"),
    ("demo_la.yaml", "aam_la_tau", -1, "la_tau must be >= 0, got -1"),
    ("demo_tde.yaml", "causal_num_heads", 0, "num_heads must be a whole number >= 1, got 0"),
    ("demo_tde.yaml", "causal_num_heads", 5, "not divisible into 5 heads"),
    ("demo_tde.yaml", "causal_mu", 1.5, "mu must be >= 0 and < 1, got 1.5"),
    ("demo_tde.yaml", "causal_feature", "relux", "feature must be one of"),
    ("demo_tde.yaml", "causal_gamma", -1, "gamma must be >= 0"),
])
def test_a_head_argument_it_refuses_is_named_when_loading(tmp_path, name, key, value, message):
    with pytest.raises(HparamsError, match="classifier: .*Head refuses its arguments: .*" + re.escape(message)):
        load_hparams(ROOT / "hparams" / name, {"output_folder": str(tmp_path / "o"), key: value})
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key, value, message", [
    ("tde_alphas", "abc", "tde_alphas must be a list of numbers"),
    ("tde_alphas", [0, "x"], "tde_alphas must be a list of numbers"),
    ("crt_options", [1], "crt_options must be a mapping of options"),
    ("crt_options", {"lr": "abc"}, "crt_options.lr must be a number > 0, got 'abc'"),
    ("lws_options", {"epochs": 0}, "lws_options.epochs must be a number > 0, got 0"),
    ("ckpt_average_last", 1.5, None),
])
def test_long_tail_values_are_checked_when_loading(tmp_path, key, value, message):
    from ltspk.train.options import TrainOptions

    over = {"output_folder": str(tmp_path / "o"), key: value}
    if message is None:  # read by the checkpoint policy, which the training options build
        with pytest.raises(HparamsError, match="ckpt_average_last must be a whole number >= 0"):
            TrainOptions.from_hparams(load_hparams(ROOT / "hparams" / "voxceleb_aam.yaml",
                                                   {**over, "data_folder": str(tmp_path)}))
        return
    with pytest.raises(HparamsError, match=re.escape(message)):
        load_hparams(ROOT / "hparams" / "demo_tde.yaml", over)


def test_the_checks_of_loading_draw_nothing_from_the_run_seed(tmp_path, monkeypatch):
    """The file seeds the generators as it loads; the head check builds a head afterwards, and must
    leave the generators as the file left them (else every draw of training shifts)."""
    import random

    import numpy as np
    import torch

    import ltspk.train.hparams as hp

    def state_after_loading():
        np.random.seed(0)  # the demo file seeds torch only
        random.seed(0)
        load_hparams(ROOT / "hparams" / "demo_tde.yaml", {"output_folder": str(tmp_path / "o")})
        return torch.rand(4).tolist(), np.random.rand(2).tolist(), random.random()

    checked = state_after_loading()
    monkeypatch.setattr(hp, "check_head", lambda *a, **k: None)
    assert state_after_loading() == checked


@pytest.mark.parametrize("override, check", [
    ("train_dataloader_options: {batch_size: 8}\n",  # merged into the file's mapping, as hyperpyyaml does
     lambda h: h["train_dataloader_options"]["batch_size"] == 8 and h["train_dataloader_options"]["drop_last"]),
    ("classifier: !name:ltspk.heads.AAMHead\n",  # the CausalNorm keys then feed nothing: left out
     lambda h: getattr(h["classifier"], "func", h["classifier"]).__name__ == "AAMHead"),
])
def test_a_saved_run_folder_holds_what_the_run_read(tmp_path, override, check):
    import speechbrain as sb

    folder = tmp_path / "run"
    folder.mkdir()
    hp = ROOT / "hparams" / "demo_tde.yaml"
    key, value = override.rstrip("\n").split(": ", 1)
    _, _, overrides = sb.parse_arguments([str(hp), "--output_folder", str(folder), f"--{key}", value])
    ran = load_hparams(hp, overrides)
    save_hyperparams(hp, overrides, folder)
    saved = load_hparams(folder / "hyperparams.yaml", {"output_folder": str(folder)})
    assert check(ran) and check(saved)
    assert "causal_mu" not in saved or "classifier" not in override  # a key that feeds nothing is left out
    from ltspk.runtime.fingerprint import training_settings
    from ltspk.train.options import crop_seconds
    assert training_settings(saved, crop_seconds(saved)) == training_settings(ran, crop_seconds(ran))
