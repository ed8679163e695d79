"""Layered hparams: a top file read by hyperpyyaml alone names ltspk's loader, a head's arguments are
keys of their own (a variant changes one value), a run folder's saved hyperparams.yaml loads again,
and run folders written with the old module paths still load."""

import io
from pathlib import Path

import pytest
from conftest import recipe_module
from hyperpyyaml import load_hyperpyyaml

from ltspk.runtime.errors import HparamsError
from ltspk.runtime.fingerprint import object_settings
from ltspk.runtime.legacy import modern_paths
from ltspk.train.hparams import load_hparams
from ltspk.train.layering import hparams_text

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
    recipe_module("train").save_hyperparams(ROOT / "hparams" / name, overrides, folder)
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
