"""Every shipped hparams file loads, and its embedder and head build with the declared sizes."""

from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "hparams").glob("*.yaml"))
PLACEHOLDERS = {"data_folder": "/data/corpus", "vox2_folder": "/data/vox2", "cn2_folder": "/data/cn2"}


def test_every_experiment_has_a_file():
    names = {f.stem for f in FILES}
    for corpus in ("voxceleb", "cnceleb", "librispeech"):
        assert {f"{corpus}_aam", f"{corpus}_tde", f"{corpus}_la", f"{corpus}_resnet_aam"} <= names
    assert {"demo_aam", "demo_tde", "demo_la"} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_hparams_build(path, tmp_path):
    text = path.read_text()
    overrides = {k: v for k, v in PLACEHOLDERS.items() if f"{k}: !PLACEHOLDER" in text}
    overrides["output_folder"] = str(tmp_path)
    h = load_hyperpyyaml(text, overrides)
    assert h["experiment"] == path.stem
    head = h["classifier"](in_dim=h["emb_dim"], n_classes=7)
    model = h["embedding_model"].eval()
    with torch.no_grad():
        feats = h["compute_features"](torch.randn(1, int(0.5 * h["sample_rate"])))
        emb = model(feats, torch.ones(1))
        logits = head(emb.reshape(1, -1))
    assert emb.reshape(1, -1).shape == (1, h["emb_dim"]) and logits.shape == (1, 7)
