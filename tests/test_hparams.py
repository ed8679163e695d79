"""Every shipped hparams file loads, and its embedder and head build with the declared sizes."""

import math
import os
from pathlib import Path

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml

from ltspk.train.layering import hparams_text

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "hparams").glob("*.yaml"))
PLACEHOLDERS = {"data_folder": "/data/corpus", "vox2_folder": "/data/vox2", "cn2_folder": "/data/cn2"}


def test_every_experiment_has_a_file():
    names = {f.stem for f in FILES}
    for corpus in ("voxceleb", "cnceleb", "librispeech"):
        assert {f"{corpus}_aam", f"{corpus}_tde", f"{corpus}_la", f"{corpus}_resnet_aam"} <= names
    assert {"demo_aam", "demo_tde", "demo_la"} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_hparams_build(path, tmp_path, monkeypatch):
    monkeypatch.setenv("SB_GLOBAL_SEED", os.environ.get("SB_GLOBAL_SEED", "563375142"))  # seed_everything sets it
    text = hparams_text(path)
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


# ---- the real-corpus recipes -------------------------------------------------------------------

REAL = [f for f in FILES if f.stem.split("_")[0] in ("voxceleb", "cnceleb", "librispeech")]


@pytest.mark.parametrize("path", REAL, ids=[f.stem for f in REAL])
def test_real_corpus_recipes_train_as_speechbrains(path, tmp_path, monkeypatch):
    from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook

    from ltspk.train import schedulers

    monkeypatch.setenv("SB_GLOBAL_SEED", os.environ.get("SB_GLOBAL_SEED", "563375142"))  # seed_everything sets it
    text = hparams_text(path)
    overrides = {k: v for k, v in PLACEHOLDERS.items() if f"{k}: !PLACEHOLDER" in text}
    h = load_hyperpyyaml(text, {**overrides, "output_folder": str(tmp_path)})
    assert "speechbrain.utils.seed_everything" in text and os.environ["SB_GLOBAL_SEED"] == str(h["seed"])
    assert h["sentence_len"] == 3.0 and "crop_seconds" not in h and "augment" not in h
    # SpeechBrain's Augmenter: without noise/rir folders the data-free parts stay on
    aug = h["wav_augment"]
    assert [type(a).__name__ for a in aug.augmentations.values()] == ["DropFreq", "DropChunk", "SpeedPerturb"]
    assert aug.parallel_augment and aug.concat_original and len(aug.ltspk_off) == 2
    drop_chunk = aug.augmentations["DropChunk1"]
    assert (drop_chunk.drop_length_low, drop_chunk.drop_length_high, drop_chunk.drop_count_high) == (1000, 2000, 5)
    # a per-step schedule whose state is checkpointed
    assert schedulers.schedule_kind(h["lr_annealing"]) == schedulers.STEP_ON_BATCH_END
    assert get_default_hook(h["lr_annealing"], DEFAULT_SAVE_HOOKS) is not None
    # validation each epoch and the best checkpoint by validation error
    assert h["valid_during_training"] and h["ckpt_min_key"] == "valid_error" and not h["ckpt_max_key"]
    # the loss from the YAML: cross-entropy on the logits, by hand
    logits, labels = torch.tensor([[2.0, 0.0]]), torch.tensor([0])
    assert h["compute_cost"](logits, labels).item() == pytest.approx(math.log(1 + math.exp(-2.0)))
    if path.stem.endswith(("_aam", "_la")):
        assert "margin_schedule" in h and h["margin_schedule"] is None
    # CN-Celeb's short clips are concatenated as WeSpeaker's CN-Celeb recipe does (min_duration=5); no other corpus
    from ltspk.data.corpora import options_from_hparams

    corpus_options = options_from_hparams(h)[4]
    assert corpus_options.get("concat_min_seconds") == (5.0 if path.stem.startswith("cnceleb") else None)
