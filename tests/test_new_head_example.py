"""docs/new_head.md runs as written: a head declared in its own module, with its hparams block, is
known to the hparams check, evaluated as a tunable family, and passes the doc's hand-computed test.
Nothing outside the new module registers it."""

import re
import sys
import types
from pathlib import Path

import pytest
import torch

import ltspk.heads
from ltspk.heads import methods
from ltspk.train import hparams as hparams_module

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "new_head.md"
PACKAGES = ("ltspk.heads", "ltspk.longtail", "ltspk.identify")


def scratch_registry(monkeypatch):
    """The registry with every shipped method, as a copy that this test's registrations leave."""
    methods.registered(*PACKAGES)  # imported first: a module registers once, when it is imported
    monkeypatch.setattr(methods, "METHODS", dict(methods.METHODS))


def blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def new_head(monkeypatch):
    """The doc's module, imported as ``ltspk.heads.weight_norm`` for this test only."""
    scratch_registry(monkeypatch)
    module = types.ModuleType("ltspk.heads.weight_norm")
    exec(compile(blocks("python")[0], "ltspk/heads/weight_norm.py", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "ltspk.heads.weight_norm", module)
    monkeypatch.setattr(ltspk.heads, "weight_norm", module, raising=False)  # as an import of it would
    return module


def test_the_new_heads_key_is_known_by_registering_alone(new_head):
    assert "weight_norm_powers" in hparams_module.known_keys()
    assert "weight_norm_powers" not in hparams_module.LTSPK_KEYS  # no list was edited


def test_without_the_module_its_key_is_an_unknown_key(tmp_path):
    top = tmp_path / "x.yaml"
    top.write_text(f"base: {ROOT / 'hparams' / 'folder_aam.yaml'}\nweight_norm_powers: [0.0, 1.0]\n")
    with pytest.raises(hparams_module.HparamsError, match="unknown key 'weight_norm_powers'"):
        hparams_module.load_hparams(top, {"data_folder": str(tmp_path), "output_folder": str(tmp_path / "o")})


def test_the_docs_hparams_block_builds_the_head_and_its_grid(new_head, tmp_path):
    head_block, top_block = blocks("yaml")
    (tmp_path / "heads").mkdir()
    (tmp_path / "heads" / "weight_norm.yaml").write_text(head_block)
    top = tmp_path / "folder_weight_norm.yaml"
    top.write_text(top_block.replace("base/folder.yaml", str(ROOT / "hparams" / "base" / "folder.yaml")))
    h = hparams_module.load_hparams(top, {"data_folder": str(tmp_path), "output_folder": str(tmp_path / "o")})
    head = h["classifier"](in_dim=4, n_classes=3)
    assert isinstance(head, new_head.WeightNormSoftmaxHead) and h["weight_norm_powers"] == [0.0, 0.5, 1.0]
    from ltspk.evaluation.evaluate import tunable_grids

    grids = tunable_grids(head, h)  # what evaluation sweeps and chooses on validation
    assert grids["weight_norm"] == (new_head.WEIGHT_NORM, [0.0, 0.5, 1.0]) and "posthoc_la" in grids


def test_the_docs_hand_computed_test_passes(new_head):
    namespace = {"torch": torch, "WeightNormSoftmaxHead": new_head.WeightNormSoftmaxHead}
    exec(blocks("python")[1], namespace)
    namespace["test_weight_norm_by_hand"]()


def test_a_method_name_or_key_cannot_be_registered_twice(monkeypatch):
    scratch_registry(monkeypatch)
    with pytest.raises(ValueError, match="posthoc_la_taus"):
        methods.register(methods.Method("other", "inference", "",
                                        methods.Tunable("p", "posthoc_la_taus", (0.0,))))
    with pytest.raises(ValueError, match="named 'tde'"):
        methods.register(methods.Method("tde", "inference", "", methods.Tunable("p", "other_key", (0.0,))))


def test_the_registry_holds_every_shipped_method():
    found = {(m.kind, m.name): m for m in methods.registered(*PACKAGES)}
    assert set(found) >= {("inference", "posthoc_la"), ("inference", "tde"), ("embedding", "tde_embeddings"),
                          ("stage2", "tau_norm"), ("stage2", "cRT"), ("stage2", "LWS"), ("stage2", "NCM"),
                          ("enrolment", "la_loss")}
    assert found[("stage2", "cRT")].options() == {"epochs", "lr", "batch_size", "weight_decay", "seed", "min_steps"}
    from ltspk.identify.settings import FAMILIES

    names = {m.name for m in found.values()}
    assert set(FAMILIES) - {"linear"} <= names  # identification's methods are the registry's
