"""Embedders, enrolment, identification, open-set rejection and adding speakers (issue 14)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from ltspk.runtime.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
FSDD = ROOT.parent / "shared" / "data" / "fsdd" / "recordings"

MODULES = """\
sample_rate: 16000
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: 24
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: 24
    channels: [32, 32, 32, 32, 96]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 16
    lin_neurons: {dim}
classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: {dim}
    out_neurons: 2
"""
SB_TAIL = """
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    classifier: !ref <classifier>
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
"""


def _modules(dim, seed):
    from hyperpyyaml import load_hyperpyyaml

    torch.manual_seed(seed)
    return load_hyperpyyaml(MODULES.format(dim=dim))


def write_sb_folder(dest, dim=32, seed=0):
    """A SpeechBrain model folder in the spkrec-ecapa-voxceleb layout, random (seeded) weights."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "hyperparams.yaml").write_text(MODULES.format(dim=dim) + SB_TAIL)
    torch.save(_modules(dim, seed)["embedding_model"].state_dict(), dest / "embedding_model.ckpt")
    return dest


def write_run_folder(dest, dim=32, seed=1):
    """An ltspk run folder: its hyperparams.yaml and one checkpoint as training saves it."""
    from ltspk.runtime.checkpoints import AtomicCheckpointer

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "hyperparams.yaml").write_text("seed: 7\n__set_seed: !apply:torch.manual_seed [7]\n" + MODULES.format(dim=dim))
    mods = _modules(dim, seed)
    AtomicCheckpointer(dest / "save", recoverables={"embedding_model": mods["embedding_model"],
                                                    "normalizer": mods["mean_var_norm"]}).save_checkpoint()
    return dest, mods


def _waves(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    wavs = 0.1 * torch.randn(n, 16000, generator=g)
    lens = torch.tensor([1.0, 0.7, 0.45][:n])
    for i, r in enumerate(lens):
        wavs[i, int(r * 16000):] = 0
    return wavs, lens


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads only add overhead


@pytest.fixture(scope="module")
def sb_model(tmp_path_factory):
    return write_sb_folder(tmp_path_factory.mktemp("sbmodel"))


@pytest.fixture(scope="module")
def embedder(sb_model):
    from ltspk.embedding.embedders import SpeechBrainEmbedder

    return SpeechBrainEmbedder(sb_model)


# ------------------------------------------------------------------------------------ embedders


def test_speechbrain_folder_gives_encoder_classifier_embeddings(sb_model, embedder, tmp_path):
    from speechbrain.inference.speaker import EncoderClassifier

    ref = EncoderClassifier.from_hparams(source=str(sb_model), savedir=str(tmp_path / "sb"), run_opts={"device": "cpu"})
    wavs, lens = _waves()
    with torch.inference_mode():
        expected = ref.encode_batch(wavs, lens).squeeze(1).numpy()
    got = embedder.embed(wavs, lens)
    assert got.shape == (3, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert embedder.sample_rate == 16000 and embedder.spec()["kind"] == "speechbrain"
    # the fingerprint follows the weights, not the folder's place
    other = write_sb_folder(tmp_path / "copy")
    from ltspk.embedding.embedders import SpeechBrainEmbedder, load_embedder

    assert SpeechBrainEmbedder(other).fingerprint() == embedder.fingerprint()
    assert load_embedder(write_sb_folder(tmp_path / "seed1", seed=1)).fingerprint() != embedder.fingerprint()


def test_run_folder_embedder_restores_the_checkpoint(tmp_path):
    from ltspk.embedding.embedders import RunEmbedder, load_embedder

    run, mods = write_run_folder(tmp_path / "run")
    emb = load_embedder(str(run))
    assert isinstance(emb, RunEmbedder)
    wavs, lens = _waves()
    with torch.inference_mode():
        for m in mods.values():
            if hasattr(m, "eval"):
                m.eval()
        feats = mods["mean_var_norm"](mods["compute_features"](wavs), lens)
        expected = mods["embedding_model"](feats, lens).squeeze(1).numpy()
    np.testing.assert_allclose(emb.embed(wavs, lens), expected, rtol=1e-5, atol=1e-6)
    # the weights came from the checkpoint: a run saved from other weights embeds differently
    run2, _ = write_run_folder(tmp_path / "run2", seed=2)
    assert not np.allclose(load_embedder(f"run:{run2}").embed(wavs, lens), expected, atol=1e-3)
    assert emb.fingerprint() != load_embedder(f"run:{run2}").fingerprint()


def test_embedder_bad_input(tmp_path):
    from ltspk.embedding.embedders import load_embedder

    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "hyperparams.yaml").write_text("x: 1\n")
    with pytest.raises(DataError, match="missing embedding_model.ckpt"):
        load_embedder(str(tmp_path / "half"))
    with pytest.raises(DataError, match="embedder not found"):
        load_embedder(str(tmp_path / "nowhere"))
    (tmp_path / "run" / "save").mkdir(parents=True)
    (tmp_path / "run" / "hyperparams.yaml").write_text(MODULES.format(dim=8))
    with pytest.raises(DataError, match="no checkpoint"):
        load_embedder(f"run:{tmp_path / 'run'}")
    with pytest.raises(DataError, match="not an ltspk run folder"):
        load_embedder(f"run:{tmp_path / 'half'}")


def test_resemblyzer_embedder():
    from ltspk.embedding.embedders import load_embedder, resemblyzer_available

    if not resemblyzer_available():
        pytest.skip("resemblyzer is not installed (optional: pip install 'ltspk[identify-resemblyzer]')")
    emb = load_embedder("resemblyzer")
    wavs, lens = _waves(2)
    out = emb.embed(wavs, lens)
    assert out.shape == (2, 256) and np.isfinite(out).all()
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-4)  # resemblyzer's embeddings are unit-norm
    np.testing.assert_allclose(emb.embed(wavs[:1], lens[:1]), out[:1], rtol=1e-5, atol=1e-6)  # batch-independent
    assert emb.fingerprint() == load_embedder("resemblyzer").fingerprint()


# ---------------------------------------------------------------------------------- classifiers


def _blobs(seed=0, n=(30, 12, 5, 3), dim=16):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(n), dim))
    x = np.concatenate([c + 0.8 * rng.normal(size=(k, dim)) for c, k in zip(centres, n)]).astype(np.float32)
    y = np.concatenate([np.full(k, i) for i, k in enumerate(n)])
    xv = np.concatenate([c + 0.8 * rng.normal(size=(3, dim)) for c in centres]).astype(np.float32)
    return x, y, xv, np.repeat(np.arange(len(n)), 3), list(n)


def test_classifiers_reuse_the_decoupled_stage(tmp_path):
    from ltspk.identify.methods import Scorer, fit_methods, ncm_scorer, train_linear
    from ltspk.identify.settings import EnrolSettings
    from ltspk.longtail.decoupled import crt, ncm, tau_normalized_logits

    x, y, xv, yv, counts = _blobs()
    w, b = train_linear(x, y, 4, q=0.0, seed=3, min_steps=50)  # q = 0: cRT itself, the same loop: equal bits
    np.testing.assert_array_equal(Scorer(np.zeros(16, np.float32), w, b).logits(xv),
                                  crt(x, y, 4, seed=3, min_steps=50)(xv).numpy())
    np.testing.assert_allclose(ncm_scorer(x, y, 4).logits(xv), ncm(x, y, 4)(xv).numpy(), rtol=1e-5, atol=1e-6)
    fitted = fit_methods(x, y, xv, yv, counts, EnrolSettings(linear_options={"min_steps": 50},
                                                            lws_options={"min_steps": 50}))
    lin = fitted["linear"][0]
    p = fitted["tau_norm"][1]["tau_norm_power"]
    np.testing.assert_allclose(lin.mu, x.mean(0), rtol=1e-6)  # every classifier scores l2n(x - enrolment mean)
    np.testing.assert_allclose(fitted["tau_norm"][0].logits(xv), tau_normalized_logits(lin.W, xv - lin.mu, p).numpy(),
                               rtol=1e-5, atol=1e-6)
    tau = fitted["posthoc_la"][1]["posthoc_tau"]
    log_prior = np.log(np.array(counts) / sum(counts) + 1e-12)
    np.testing.assert_allclose(fitted["posthoc_la"][0].logits(xv), lin.logits(xv) - tau * log_prior, rtol=1e-5, atol=1e-5)
    # every tunable family swept on validation, the choice among its settings
    assert set(fitted["la_loss"][2]) == {0.0, 0.5, 1.0, 1.5, 2.0} and fitted["la_loss"][1]["la_tau"] in fitted["la_loss"][2]
    assert len(fitted["tau_norm"][2]) == 21


def test_enrolment_linear_classifier_by_hand():
    """train_linear (instance sampling, logit-adjusted loss) is plain SGD on the whole tiny set:
    3 full-size steps, momentum 0.9, weight decay, cosine learning rate, computed here in float64."""
    import math

    from ltspk.identify.methods import train_linear

    x = np.array([[1.0, 0.2, 0.0], [0.8, -0.3, 0.1], [0.9, 0.1, -0.2], [-0.2, 1.0, 0.3], [0.1, -0.4, 1.0]])
    y = np.array([0, 0, 0, 1, 2])
    log_prior = np.log(np.bincount(y) / len(y))
    tau, lr, wd, seed = 1.0, 0.7, 5e-4, 2
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    gen, bound = torch.Generator().manual_seed(seed), 1 / math.sqrt(3)
    w = torch.empty(3, 3).uniform_(-bound, bound, generator=gen).double().numpy()  # nn.Linear's initialisation
    b = torch.empty(3).uniform_(-bound, bound, generator=gen).double().numpy()
    buf = None
    for t in range(3):
        z = xn @ w.T + b + tau * log_prior
        p = np.exp(z - z.max(1, keepdims=True))
        p = p / p.sum(1, keepdims=True) - np.eye(3)[y]
        g = (p.T @ xn / len(y) + wd * w, p.mean(0) + wd * b)
        buf = g if buf is None else (0.9 * buf[0] + g[0], 0.9 * buf[1] + g[1])
        lr_t = lr * (1 + math.cos(math.pi * t / 3)) / 2
        w, b = w - lr_t * buf[0], b - lr_t * buf[1]
    got_w, got_b = train_linear(x, y, 3, q=1.0, la_tau=tau, log_prior=log_prior, epochs=3, lr=lr, batch_size=5,
                                weight_decay=wd, seed=seed, min_steps=1)
    np.testing.assert_allclose(got_w, w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, b, rtol=1e-5, atol=1e-6)


def test_enrolment_linear_classifier_fits_a_long_tail():
    from ltspk.identify.methods import train_linear

    x, y, xv, yv, _ = _blobs()
    w, b = train_linear(x - x.mean(0), y, 4, seed=0, lr=1.0, min_steps=300)
    z = (x - x.mean(0)) / np.linalg.norm(x - x.mean(0), axis=1, keepdims=True) @ w.T + b
    assert (z.argmax(1) == y).all()  # separable blobs, the 3-recording class included


def test_split_is_per_speaker_and_keeps_small_speakers():
    from ltspk.data.manifest import Utterance
    from ltspk.identify.settings import EnrolSettings
    from ltspk.identify.split import assign_roles, resolve_impostors

    def rows(spec):
        return sorted((Utterance(f"{s}/{k}", 1.0, f"/x/{s}/{k}.wav", 0, 16000, s) for s, n in spec.items()
                       for k in range(n)), key=lambda u: (u.spk_id, u.ID))

    s = EnrolSettings(test_per_speaker=2, valid_per_speaker=1, seed=5)
    base = rows({"a": 20, "b": 4, "c": 3, "d": 1})
    roles, small = assign_roles(base, s, set())
    by = {(u.spk_id, r) for u, r in zip(base, roles)}
    assert small == ["c", "d"] and ("c", "test") not in by and ("d", "enrol") in by
    assert sum(1 for u, r in zip(base, roles) if u.spk_id == "a" and r == "test") == 2
    assert sum(1 for u, r in zip(base, roles) if u.spk_id == "b" and r == "enrol") == 1
    more = rows({"a": 20, "b": 4, "c": 3, "d": 1, "aa": 9, "e": 7})
    roles2, _ = assign_roles(more, s, set())
    old = {u.ID: r for u, r in zip(base, roles)}
    assert {u.ID: r for u, r in zip(more, roles2) if u.ID in old} == old  # other speakers never move a split
    imp = resolve_impostors(2, [u.spk_id for u in more], seed=5)
    roles3, _ = assign_roles(more, s, set(imp))
    assert sorted({r for u, r in zip(more, roles3) if u.spk_id in imp}) == ["impostor_test", "impostor_valid"]
    assert resolve_impostors("a,b", ["a", "b", "c", "d"], 0) == ["a", "b"]
    with pytest.raises(DataError, match="at least 2"):
        resolve_impostors(1, ["a", "b", "c"], 0)
    with pytest.raises(DataError, match="not speakers"):
        resolve_impostors("a,zz", ["a", "b", "c", "d"], 0)


def test_long_tail_is_drawn_after_the_hold_out():
    """--imbalance-factor sub-samples the enrolled recordings only: every speaker keeps its test and
    validation recordings (the split of the full data) and impostors keep all theirs."""
    from ltspk.data.longtail import longtail_targets
    from ltspk.data.manifest import Utterance
    from ltspk.identify.settings import EnrolSettings
    from ltspk.identify.split import assign_roles, longtail_enrolment

    spk = [f"s{i}" for i in range(8)]
    rows = sorted((Utterance(f"{s}/{k:02d}", 1.0, f"/x/{s}/{k}.wav", 0, 16000, s) for s in spk for k in range(30)),
                  key=lambda u: (u.spk_id, u.ID))
    s = EnrolSettings(test_per_speaker=5, valid_per_speaker=3, imbalance_factor=10, seed=4)
    full, _ = assign_roles(rows, s, {"s6", "s7"})
    kept, roles = longtail_enrolment(rows, s, ["s6", "s7"])
    before = {u.ID: r for u, r in zip(rows, full)}
    assert all(before[u.ID] == r for u, r in zip(kept, roles))  # the split is the full data's
    held = {u.ID for u, r in zip(rows, full) if r != "enrol"}
    assert held <= {u.ID for u in kept}  # test, validation and impostor recordings all kept
    enrolled = {x: sum(1 for u, r in zip(kept, roles) if u.spk_id == x and r == "enrol") for x in spk[:6]}
    assert enrolled == longtail_targets(dict.fromkeys(spk[:6], 22), 10) and enrolled["s5"] == 3  # ceil(2.2): IF 7.3 <= 10
    assert all(sum(1 for u, r in zip(kept, roles) if u.spk_id == x and r == "test") == 5 for x in spk[:6])


def test_embedding_cache_file_accumulates(tmp_path):
    from ltspk.embedding.file_cache import read_cache, write_cache

    src, other = {"embedder": "a"}, {"embedder": "b"}
    f = tmp_path / "cache.npz"
    write_cache(f, src, ["k1", "k2"], np.ones((2, 3)))
    write_cache(f, src, ["k2", "k3"], np.full((2, 3), 2.0))  # another enrolment's files: k1 is kept
    got = read_cache(f, src)
    assert sorted(got) == ["k1", "k2", "k3"] and got["k1"][0] == 1 and got["k2"][0] == 2
    write_cache(f, other, ["k9"], np.zeros((1, 3)))  # another embedder replaces the file
    assert read_cache(f, src) == {} and sorted(read_cache(f, other)) == ["k9"]


# ---------------------------------------------------------------------------------- enrolment


def _synthetic_speakers(root, counts, seed=0):
    """Speaker folders of SYNTHETIC voices (ltspk.data.synthetic), 0.8..1.2 s a file."""
    from ltspk.data.synthetic import SAMPLE_RATE, apply_channel, random_channel, random_voice, utterance

    rng = np.random.default_rng(seed)
    for spk, n in counts.items():
        voice = random_voice(rng)
        for k in range(n):
            x = apply_channel(utterance(voice, rng, rng.uniform(0.8, 1.2)), random_channel(rng), rng)
            (root / spk).mkdir(parents=True, exist_ok=True)
            sf.write(root / spk / f"{spk}-{k:03d}.wav", x, SAMPLE_RATE, subtype="PCM_16")
    return root


FAST = {"linear_options": {"min_steps": 100}, "lws_options": {"min_steps": 100}}


def _same_model(a, b):
    ia, ib = (json.loads((Path(m) / "model.json").read_text()) for m in (a, b))
    assert ia == ib
    with np.load(Path(a) / "arrays.npz", allow_pickle=False) as za, np.load(Path(b) / "arrays.npz", allow_pickle=False) as zb:
        assert sorted(za.files) == sorted(zb.files)
        for k in za.files:
            assert np.array_equal(za[k], zb[k]), k


def test_enrol_identify_add_equals_enrolling_from_scratch(tmp_path, embedder):
    from ltspk.identify import EnrolmentModel, EnrolSettings, add_speakers, enrol

    old = {"s01": 24, "s02": 12, "s03": 8, "s04": 6, "s05": 5, "s06": 4, "s07": 4}
    new = {"s08": 7, "s09": 1}  # s09: one recording, enrolled whole, never tested
    _synthetic_speakers(tmp_path / "all", {**old, **new})
    (tmp_path / "old").mkdir()
    for s in old:
        os.symlink(tmp_path / "all" / s, tmp_path / "old" / s)
    (tmp_path / "new").mkdir()
    for s in new:
        os.symlink(tmp_path / "all" / s, tmp_path / "new" / s)
    settings = EnrolSettings(test_per_speaker=2, valid_per_speaker=1, many_above=15, few_below=6,
                             impostors="s06,s07", **FAST)

    info, report = enrol(embedder, tmp_path / "old", tmp_path / "m_add", settings)
    assert info["speakers"] == ["s01", "s02", "s03", "s04", "s05"] and report["n_impostor_speakers"] == 2
    assert set(report["test"]) == {"linear", "NCM", "posthoc_la", "la_loss", "cRT", "tau_norm", "LWS"}
    opn = report["test"]["NCM"]
    assert opn["impostors"] == "test impostor speakers" and 0 <= opn["open_set"]["overall"]["oscr_auc"] <= 100
    assert "## Open set" in (tmp_path / "m_add" / "report.md").read_text()
    before = EnrolmentModel(tmp_path / "m_add")

    info2, report2 = add_speakers(tmp_path / "m_add", tmp_path / "new", embedder)
    assert report2["files_embedded"] == 8 and report2["added_speakers"] == ["s08", "s09"]  # the old files: not embedded
    assert "s09" in report2["too_small_to_hold_out"] and "s09" in info2["speakers"]
    enrol(embedder, tmp_path / "all", tmp_path / "m_scratch", settings)
    _same_model(tmp_path / "m_add", tmp_path / "m_scratch")

    # enrolling again reuses every embedding from the model folder's cache
    _, again = enrol(embedder, tmp_path / "all", tmp_path / "m_scratch", settings)
    assert again["files_embedded"] == 0
    _same_model(tmp_path / "m_add", tmp_path / "m_scratch")

    model = EnrolmentModel(tmp_path / "m_add")
    assert len(model.speakers) == len(before.speakers) + 2
    files = [tmp_path / "all" / "s01" / "s01-000.wav", tmp_path / "all" / "s06" / "s06-000.wav", tmp_path / "nothing.wav"]
    out = model.predict(files, embedder, top_k=3)
    assert out[2]["error"] == "audio file not found"
    for r in out[:2]:
        probs = [p for _, p in r["top"]]
        assert len(probs) == 3 and probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
        assert r["speaker"] in (*model.speakers, "unknown")
        assert (r["speaker"] == "unknown") == (r["score"] < r["threshold"])
    with pytest.raises(DataError, match="already in the enrolment"):
        add_speakers(tmp_path / "m_add", tmp_path / "new", embedder)


def test_enrolment_bad_input(tmp_path, embedder, sb_model, monkeypatch):
    from ltspk.embedding.embedders import SpeechBrainEmbedder
    from ltspk.identify import EnrolmentModel, EnrolSettings, enrol

    _synthetic_speakers(tmp_path / "one", {"solo": 6})
    with pytest.raises(DataError, match="needs at least 2"):
        enrol(embedder, tmp_path / "one", tmp_path / "m1", EnrolSettings(**FAST))
    _synthetic_speakers(tmp_path / "tiny", {"a": 3, "b": 2})
    with pytest.raises(DataError, match="no validation recordings"):
        enrol(embedder, tmp_path / "tiny", tmp_path / "m2", EnrolSettings(**FAST))
    data = _synthetic_speakers(tmp_path / "ok", {"a": 6, "b": 5, "c": 4}, seed=3)
    sf.write(data / "a" / "short.wav", np.zeros(400, np.float32) + 0.1, 16000)  # 25 ms: below the minimum
    s = EnrolSettings(test_per_speaker=1, valid_per_speaker=1, **FAST)
    _, rep = enrol(embedder, data, tmp_path / "m3", s)
    assert any("short.wav" in b and "shorter than the embedder's minimum" in b for b in rep["bad_files"])
    model = EnrolmentModel(tmp_path / "m3")
    # a file of another sample rate is resampled; a short one is named
    x, _ = sf.read(data / "b" / "b-000.wav", dtype="float32")
    sf.write(tmp_path / "b8k.wav", x[::2], 8000)
    r = model.predict([tmp_path / "b8k.wav", data / "a" / "short.wav"], embedder)
    assert "top" in r[0] and "shorter than the speechbrain embedder's minimum" in r[1]["error"]
    # an embedder of another size, or other weights, is refused against this enrolment
    wide = SpeechBrainEmbedder(write_sb_folder(tmp_path / "wide", dim=48))
    calls = []
    monkeypatch.setattr(SpeechBrainEmbedder, "embed", lambda self, w: calls.append(w))
    with pytest.raises(DataError, match="not the one this enrolment was made with"):
        model.predict([data / "a" / "a-000.wav"], wide)
    with pytest.raises(DataError, match="not the one this enrolment was made with"):
        model.predict([data / "a" / "a-000.wav"], SpeechBrainEmbedder(write_sb_folder(tmp_path / "other", seed=9)))
    assert calls == []  # refused before any file is embedded
    monkeypatch.undo()
    with pytest.raises(DataError, match="48-dimensional embeddings; this enrolment holds 32"):
        model.check_embeddings(wide, wide.embed(np.zeros((1, 16000), dtype=np.float32)))
    (tmp_path / "m3" / "model.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(DataError, match="not an ltspk enrolment model"):
        EnrolmentModel(tmp_path / "m3")


@pytest.mark.parametrize("file_rate", [8000, 16000])
def test_load_waveform_reads_only_the_frames_max_seconds_keeps(tmp_path, monkeypatch, file_rate):
    """The same samples as reading [start, stop) whole, resampling, then keeping the first
    max_seconds (the behaviour before frames_to_read), from a read of about max_seconds only
    (at least MIN_READ_FRAMES: at 8 kHz, 2.5 s read alone would be resampled by another conv1d
    kernel than the 40 s, 1 ulp apart)."""
    from types import SimpleNamespace

    import ltspk.data.audio as audio
    from ltspk.embedding.reading import MIN_READ_FRAMES, load_waveform

    def whole_then_cut(path, start=0, stop=None, max_seconds=None):
        wav = audio.load(str(path), start, stop, sample_rate=16000)
        return wav[: int(max_seconds * 16000)] if max_seconds else wav

    rng = np.random.default_rng(file_rate)
    t = np.arange(40 * file_rate) / file_rate
    x = (0.3 * np.sin(2 * np.pi * 180 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    sf.write(tmp_path / "long.wav", x, file_rate, subtype="PCM_16")  # 40 s
    sf.write(tmp_path / "short.wav", x[: int(1.5 * file_rate)], file_rate, subtype="PCM_16")
    emb = SimpleNamespace(sample_rate=16000, min_seconds=0.5, kind="test")
    real, lengths = audio.read_segment, []

    def spy(path, window):
        return real(path, lambda sr: lengths.append(window(sr)[1]) or window(sr))

    monkeypatch.setattr(audio, "read_segment", spy)
    cases = [("long", 0, None, 2.5), ("long", 12345, None, 3.3333), ("long", 7, None, 6.0),
             ("long", 999, 999 + 5 * file_rate, 2.0), ("long", 999, 999 + file_rate, 2.0), ("long", 0, None, None),
             ("short", 0, None, 2.5), ("short", 0, None, 1.5), ("short", 321, None, 1.2)]
    for name, start, stop, max_seconds in cases:
        lengths.clear()
        got = load_waveform(tmp_path / f"{name}.wav", emb, start, stop, max_seconds)
        assert torch.equal(got, whole_then_cut(tmp_path / f"{name}.wav", start, stop, max_seconds)), (name, start)
        if name == "long" and max_seconds:
            assert 0 < lengths[0] <= max(MIN_READ_FRAMES, (max_seconds + 0.05) * file_rate) < 10 * file_rate
    assert load_waveform(tmp_path / "long.wav", emb, max_seconds=2.5).numel() == 40000


def test_list_rows_from_a_manifest(tmp_path):
    from ltspk.data.manifest import Utterance, write_manifest
    from ltspk.identify.rows import list_rows

    data = _synthetic_speakers(tmp_path / "d", {"b": 2, "a": 2})
    rows = [Utterance(f"{p.parent.name}/{p.stem}", 1.0, str(p), 0, sf.info(str(p)).frames, p.parent.name)
            for p in sorted(data.rglob("*.wav"))]
    rows.append(Utterance("a/tiny", 0.01, str(data / "a" / "a-000.wav"), 0, 160, "a"))
    write_manifest(tmp_path / "m.csv", rows)
    got, bad = list_rows(tmp_path / "m.csv", min_seconds=0.1)
    assert [u.ID for u in got] == ["a/a-000", "a/a-001", "b/b-000", "b/b-001"]  # sorted by speaker, then ID
    assert len(bad) == 1 and "shorter than the embedder's minimum" in bad[0][1]
    with pytest.raises(DataError, match="data not found"):
        list_rows(tmp_path / "missing")


def _cli(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, str(ROOT / "recipes" / "identify.py"), *map(str, args)], capture_output=True,
                       text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


def test_fsdd_enrol_predict_add_cli(tmp_path, sb_model):
    """Real speech (FSDD, 8 kHz, resampled to 16 kHz) through the recipe: enrol 5 speakers with a
    long tail, identify held-out files, add the sixth speaker."""
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD} (the shared test data is absent)")
    counts = {"george": 30, "jackson": 14, "lucas": 8, "nicolas": 5, "theo": 4}
    for spk, n in {**counts, "yweweler": 6}.items():
        dest = tmp_path / ("new" if spk == "yweweler" else "data") / spk
        dest.mkdir(parents=True)
        for f in sorted(FSDD.glob(f"*_{spk}_*.wav"))[: n * 9 : 9]:
            os.symlink(f, dest / f.name)
    model = tmp_path / "model"
    out = _cli("enrol", "--embedder", sb_model, "--data", tmp_path / "data", "--out", model, "--test-per-speaker", 1,
               "--valid-per-speaker", 1, "--many-above", 20, "--few-below", 6, "--quiet")
    assert "Closed-set top-1 accuracy" in out and "simulated (own speaker left out)" in out
    probe = FSDD / "9_george_49.wav"
    lines = _cli("predict", "--model", model, probe, "--json", "--top-k", 2).strip().splitlines()
    r = json.loads(lines[-1])
    assert r["file"] == str(probe) and len(r["top"]) == 2 and r["top"][0][0] in counts
    out = _cli("add", "--model", model, "--data", tmp_path / "new", "--quiet")
    assert "added 1 speaker(s) (6 file(s) embedded): 6 enrolled" in out
    rep = json.loads((model / "report.json").read_text())
    assert rep["n_enrolled_speakers"] == 6 and rep["verification"]["n_trials"] == 6 * 6
