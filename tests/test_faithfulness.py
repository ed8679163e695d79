"""Faithfulness: tau-norm's neutral power per head, LWS's weight decay, the exported classifier's
inference, and the synthetic corpus called synthetic. Every figure is computed by hand."""

import json
import math
import re

import numpy as np
import pytest
import torch

from ltspk.heads import AAMHead, CausalNormHead, CosineHead, SoftmaxHead
from ltspk.longtail.decoupled import TAU_NORM, choose_power, lws, tau_norm_neutral, tau_normalized_logits

W = [[3.0, 0.0], [0.0, 1.0]]  # class 0's weight is 3 times longer than class 1's
X = [[1.0, 2.0]]  # cos to class 0: 1/sqrt 5, to class 1: 2/sqrt 5
R5 = math.sqrt(5.0)


def _with_weight(head):
    with torch.no_grad():
        head.weight.copy_(torch.tensor(W))
    return head.eval()


# ------------------------------------------------------------------------------------- tau-norm


def test_each_head_declares_the_tau_norm_power_of_its_plain_inference():
    assert tau_norm_neutral(AAMHead(2, 2)) == 1.0 and tau_norm_neutral(CosineHead(2, 2)) == 1.0
    assert tau_norm_neutral(CausalNormHead(2, 2, num_heads=1)) == 1.0
    assert tau_norm_neutral(SoftmaxHead(2, 2)) == 0.0
    assert tau_norm_neutral(object()) == TAU_NORM.neutral == 0.0  # anything else: the linear classifier's


@pytest.mark.parametrize("head", [AAMHead(2, 2, margin=0.2, scale=30.0), CosineHead(2, 2, scale=30.0)])
def test_tau_norm_at_the_neutral_power_equals_a_cosine_heads_plain_inference(head):
    head = _with_weight(head)
    plain = head.inference_logits(torch.tensor(X)).detach()
    # s cos: 30 (1/sqrt 5, 2/sqrt 5) = (13.416, 26.833): class 1
    np.testing.assert_allclose(plain.numpy(), [[30 / R5, 60 / R5]], rtol=1e-6)
    at_neutral = tau_normalized_logits(W, X, tau_norm_neutral(head))
    np.testing.assert_allclose(at_neutral.numpy(), [[1 / R5, 2 / R5]], rtol=1e-6)  # <x/|x|, w/|w|>
    assert at_neutral.argmax(1).item() == plain.argmax(1).item() == 1
    # power 0 is the most changed classifier here: <x/|x|, w> = (3/sqrt 5, 2/sqrt 5) picks class 0
    np.testing.assert_allclose(tau_normalized_logits(W, X, 0.0).numpy(), [[3 / R5, 2 / R5]], rtol=1e-6)


def test_causal_norm_plain_equals_tau_norm_power_one_with_one_head_and_no_gamma():
    head = _with_weight(CausalNormHead(2, 2, num_heads=1, scale=16.0, gamma=0.0))
    plain = head.inference_logits(torch.tensor(X)).detach()
    np.testing.assert_allclose(plain.numpy(), [[16 / R5, 32 / R5]], rtol=1e-6)
    np.testing.assert_allclose(tau_normalized_logits(W, X, tau_norm_neutral(head)).numpy() * 16, plain.numpy(), rtol=1e-6)


def test_softmax_head_plain_ranks_as_tau_norm_power_zero():
    head = SoftmaxHead(2, 2, bias=False)
    with torch.no_grad():
        head.linear.weight.copy_(torch.tensor(W))
    plain = head.inference_logits(torch.tensor(X)).detach()  # W x = (3, 2)
    np.testing.assert_allclose(plain.numpy(), [[3.0, 2.0]])
    np.testing.assert_allclose(tau_normalized_logits(W, X, tau_norm_neutral(head)).numpy(), [[3 / R5, 2 / R5]], rtol=1e-6)


def test_validation_ties_go_to_the_heads_neutral_power():
    unit = [[1.0, 0.0], [0.0, 1.0]]  # unit class weights: every power gives the same logits, so every score ties
    x_val, y_val = [[1.0, 0.2], [0.1, 1.0]], [0, 1]
    power, scores = choose_power(unit, x_val, y_val, neutral=tau_norm_neutral(AAMHead(2, 2)))
    assert set(scores.values()) == {1.0} and power == 1.0  # AAM: 1 is its plain classifier
    assert choose_power(unit, x_val, y_val)[0] == 0.0  # a linear classifier: 0


# ------------------------------------------------------------------------------------------ LWS


@pytest.mark.parametrize("weight_decay, expected", [
    # one SGD step (momentum buffer = gradient) on s = (1, 1), lr 0.2, logits z = I, labels (0, 1):
    # dL/ds_j = (softmax(1, 0)_0 - 1) / 2 = -1 / (2 (1 + e)); s_j <- 1 - 0.2 (-1 / (2 (1 + e)) + wd * 1)
    (0.0, 1 + 0.1 / (1 + math.e)),
    (0.1, 1 + 0.1 / (1 + math.e) - 0.02),
])
def test_lws_step_with_weight_decay_by_hand(monkeypatch, weight_decay, expected):
    import ltspk.longtail.decoupled as dec

    monkeypatch.setattr(dec, "_balanced_batches", lambda y, epochs, bs, seed, q=0.0: iter([(0, torch.tensor([0, 1]))]))
    s = lws(np.eye(2), [0, 1], epochs=1, lr=0.2, batch_size=2, min_steps=1, weight_decay=weight_decay)
    np.testing.assert_allclose(s, [expected, expected], rtol=1e-6)


def test_lws_weight_decay_defaults_to_kangs_and_shows_in_the_hparams():
    import inspect
    from pathlib import Path

    assert inspect.signature(lws).parameters["weight_decay"].default == 5e-4
    for f in sorted((Path(__file__).resolve().parents[1] / "hparams" / "base").glob("*.yaml")):
        lines = [ln for ln in f.read_text().splitlines() if ln.startswith("lws_options:")]
        assert all("weight_decay: 0.0005" in ln for ln in lines), f


# --------------------------------------------------------------------------------------- export


def _records(run, rows):
    from ltspk.evaluation.records import Record, stage_document
    from ltspk.runtime.atomic import write_json

    recs = [Record("evaluate", "speaker_id", fam, "spkid_valid", {"overall": acc}, {param: v}, "validation")
            for fam, param, v, acc in rows]
    write_json(run / "evaluation" / "records.json", stage_document("evaluate", recs))


def test_chosen_inference_is_the_best_on_validation_with_ties_to_plain(tmp_path):
    from ltspk.train.export import chosen_inference

    head = CausalNormHead(4, 2)
    _records(tmp_path, [("posthoc_la", "posthoc_tau", 0.0, 80.0), ("posthoc_la", "posthoc_tau", 1.0, 85.0),
                        ("tde", "tde_alpha", 0.0, 80.0), ("tde", "tde_alpha", 1.5, 87.5)])
    assert chosen_inference(tmp_path, head) == {"family": "tde", "params": {"tde_alpha": 1.5}, "valid_accuracy": 87.5,
                                                "split": "spkid_valid"}
    _records(tmp_path, [("posthoc_la", "posthoc_tau", 0.0, 85.0), ("posthoc_la", "posthoc_tau", 1.0, 85.0),
                        ("tde", "tde_alpha", 1.5, 85.0)])
    assert chosen_inference(tmp_path, head)["family"] == "plain"  # a tie: the least change
    assert chosen_inference(tmp_path / "nothing", head) is None


def test_deployed_head_applies_post_hoc_adjustment_by_hand():
    from ltspk.train.export import DeployedHead

    head = CosineHead(2, 2, scale=30.0)
    with torch.no_grad():
        head.weight.copy_(torch.eye(2))
    head.set_priors([3, 1])
    out = DeployedHead(head, "posthoc_la", {"posthoc_tau": 1.0})(torch.tensor([[0.6, 0.8]]))
    # 30 cos - log prior: (18 - ln 3/4, 24 - ln 1/4)
    np.testing.assert_allclose(out.detach().numpy(), [[18 - math.log(0.75), 24 - math.log(0.25)]], rtol=1e-6)
    assert set(DeployedHead(head).state_dict()) == {f"head.{k}" for k in head.state_dict()}


def test_exported_yaml_has_the_chosen_inference_and_no_training_only_arguments():
    from hyperpyyaml import load_hyperpyyaml
    from test_train_e2e import ROOT

    from ltspk.train.export import DeployedHead, export_yaml
    from ltspk.train.layering import hparams_text

    text = export_yaml(hparams_text(ROOT / "hparams" / "demo_tde.yaml"), 5, {"output_folder": "/x", "data_folder": "/y"},
                       {"family": "tde", "params": {"tde_alpha": 1.5}, "valid_accuracy": 90.0, "split": "spkid_valid"})
    classifier = text[text.index("classifier:"):text.index("\nmodules:")]
    assert "!new:ltspk.train.export.DeployedHead" in classifier and "family: tde" in classifier
    assert not re.search(r"^\s+(alpha|mu|la_tau|margin):", classifier, re.M), classifier
    assert "classify_batch gives the logits of the inference chosen on spkid_valid: tde (tde_alpha 1.5)" in text
    built = load_hyperpyyaml(text)["classifier"]
    assert isinstance(built, DeployedHead) and built.params == {"tde_alpha": 1.5} and built.head.n_classes == 5
    plain = export_yaml(hparams_text(ROOT / "hparams" / "demo_aam.yaml"), 5, {"output_folder": "/x", "data_folder": "/y"})
    assert "classify_batch gives the head's PLAIN logits" in plain and "family: plain" in plain


# ------------------------------------------------------------------------------------ synthetic


def test_the_synthetic_corpus_is_called_synthetic(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    from ltspk.data.corpora import prepare_corpus
    from ltspk.data.prepare import PrepOptions
    from ltspk.data.summary import plot_counts, summary_text
    from ltspk.data.synthetic import make_corpus
    from ltspk.data.voxceleb import prepare_voxceleb

    small = dict(n_train_speakers=5, n_test_speakers=3, max_utts=8, imbalance=2, test_utts=2, min_seconds=0.3,
                 max_seconds=0.4, n_trials=6, progress=False)
    opts = PrepOptions(holdout_per_speaker=1, valid_per_speaker=1, progress=False)
    prepare_corpus("synthetic", tmp_path / "data", tmp_path / "syn", opts, **small)
    info = json.loads((tmp_path / "syn" / "counts.json").read_text())
    assert info["corpus"] == "synthetic" and "corpus: synthetic" in summary_text(info)
    titles = []
    monkeypatch.setattr(Axes, "set_title", lambda self, t, *a, **k: titles.append(t))
    plot_counts(info, tmp_path / "counts.png")
    assert titles[0].startswith("synthetic: 5 training speakers")
    # otherwise the very preparation VoxCeleb's would make of the same files
    prepare_voxceleb(tmp_path / "vox", make_corpus(tmp_path / "data", **small), None, ["vox1_dev"], "O", opts)
    vox = json.loads((tmp_path / "vox" / "counts.json").read_text())
    assert vox["corpus"] == "voxceleb" and {**vox, "corpus": "synthetic"} == info
    for name in ("train.csv", "spkid_test.csv", "spkid_valid.csv", "verification.csv", "trials.txt"):
        assert (tmp_path / "vox" / name).read_text() == (tmp_path / "syn" / name).read_text()
