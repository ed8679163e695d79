"""Fine-tuning from a pretrained embedder (ltspk.train.pretrained): a run starts from a SpeechBrain model
folder's (or an ltspk run's) embedding model, trains the embedder at embedder_lr_scale x the head's
learning rate through every schedule update, refuses a pretrained model of other shapes before any
training, and never loads the pretrained weights again when it resumes.

Runs are in-process tiny runs on the synthetic corpus (test_resume_exact's setup)."""

import re
from pathlib import Path

import pytest
import torch
from test_resume_exact import ROOT, Stop, assert_same, checkpoints, outcome, stop_after_epoch, train

from ltspk.train.brain import SpeakerBrain
from ltspk.train.layering import hparams_text

ECAPA = ("!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN {input_size: 40, channels: [16, 16, 48], "
         "kernel_sizes: [5, 3, 1], dilations: [1, 2, 1], attention_channels: 8, res2net_scale: 2, se_channels: 8, "
         "lin_neurons: LIN}")  # test_resume_exact's SMALL model
SB_TAIL = """
modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
"""
CYCLIC = "!new:speechbrain.nnet.schedulers.CyclicLRScheduler {base_lr: 0.0, max_lr: 0.01, step_size: 3}"

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads only add overhead


def write_sb_folder(dest, lin=32, seed=123):
    """A SpeechBrain model folder (spkrec-ecapa-voxceleb layout) with random, seeded weights."""
    from hyperpyyaml import load_hyperpyyaml

    dest.mkdir(parents=True, exist_ok=True)
    text = ("compute_features: !new:speechbrain.lobes.features.Fbank {n_mels: 40}\n"
            "mean_var_norm: !new:speechbrain.processing.features.InputNormalization {norm_type: sentence, "
            "std_norm: False}\n" f"embedding_model: {ECAPA.replace('LIN', str(lin))}\n")
    (dest / "hyperparams.yaml").write_text(text + SB_TAIL)
    torch.manual_seed(seed)
    torch.save(load_hyperpyyaml(text)["embedding_model"].state_dict(), dest / "embedding_model.ckpt")
    return dest


def folder_state(folder):
    return torch.load(folder / "embedding_model.ckpt", weights_only=True)


def record(monkeypatch, log):
    """Per optimiser step (after the schedule, before the step): the lr of every parameter group, and
    the embedding model's state at the first step."""
    original = SpeakerBrain.on_fit_batch_start

    def hook(self, batch, should_step):
        original(self, batch, should_step)
        if not log:
            log.append({k: v.clone() for k, v in self.modules["embedding_model"].state_dict().items()})
        log.append((self.hparams.epoch_counter.current, [(g.get("ltspk_group"), g["lr"])
                                                          for g in self.optimizer.param_groups]))
    monkeypatch.setattr(SpeakerBrain, "on_fit_batch_start", hook)


def count_reads(monkeypatch, reads):
    """Append to ``reads`` the resolved path of every file torch.load reads."""
    original = torch.load

    def load(f, *args, **kwargs):
        if isinstance(f, (str, Path)):
            reads.append(Path(f).resolve())
        return original(f, *args, **kwargs)
    monkeypatch.setattr(torch, "load", load)


def assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def ft(tmp_path_factory):
    """A SpeechBrain folder and a 2-epoch run fine-tuned from it (embedder at 0.25 x the lr), recorded
    (and the files torch.load read)."""
    tmp = tmp_path_factory.mktemp("finetune")
    folder = write_sb_folder(tmp / "sb_model")
    log, reads = [], []
    with pytest.MonkeyPatch.context() as m:
        record(m, log)
        count_reads(m, reads)
        out = train(tmp, "ref", "--pretrained_embedder", str(folder), "--embedder_lr_scale", "0.25")
    return tmp, folder, out, log, reads


def test_training_starts_from_the_folder_with_the_embedder_at_a_scaled_lr(ft):
    tmp, folder, out, log, reads = ft
    assert_state_equal(log[0], folder_state(folder))  # the folder's weights before the first step
    # read once: the check before the data are prepared keeps the weights for the load at the start
    assert reads.count((folder / "embedding_model.ckpt").resolve()) == 1
    per_epoch = {e: {tuple(groups) for ep, groups in log[1:] if ep == e} for e in (1, 2)}
    head = {}
    for e in (1, 2):
        assert len(per_epoch[e]) == 1  # per-epoch schedule: one lr an epoch
        (rest, head[e]), (group, emb_lr) = next(iter(per_epoch[e]))
        assert (rest, group) == ("rest", "embedding_model") and emb_lr == pytest.approx(0.25 * head[e], rel=1e-12)
    assert head[2] < head[1]  # the LinearScheduler lowered the lr after epoch 1: the ratio held through the update
    assert "lr_embedder: " in (out / "train_log.txt").read_text()
    meta, last = checkpoints(out)[-1]
    groups = torch.load(last / "optimizer.ckpt", weights_only=True)["param_groups"]
    assert [(g["ltspk_group"], g["lr_scale"]) for g in groups] == [("rest", 1.0), ("embedding_model", 0.25)]
    saved = (out / "hyperparams.yaml").read_text()
    assert f"\npretrained_embedder: {folder}\n" in saved and "\nembedder_lr_scale: 0.25\n" in saved


def test_a_run_without_the_key_keeps_one_optimiser_group(ft):
    tmp, *_ = ft
    log = []
    with pytest.MonkeyPatch.context() as m:
        record(m, log)
        out = train(tmp, "plain", epochs=1)
    assert [g for g, _ in log[1][1]] == [None]  # SpeechBrain's single group, no lr_scale
    assert "lr_embedder" not in (out / "train_log.txt").read_text()
    assert "pretrained_embedder" not in (out / "hyperparams.yaml").read_text()


def test_resume_continues_from_the_checkpoint_not_the_folder(ft, monkeypatch):
    tmp, folder, *_ = ft
    with monkeypatch.context() as m:
        stop_after_epoch(m, epoch=1)
        with pytest.raises(Stop):
            train(tmp, "stopped", "--pretrained_embedder", str(folder), "--embedder_lr_scale", "0.25")

    def refuse(*args, **kwargs):
        raise AssertionError("pretrained weights loaded again on resume")
    monkeypatch.setattr("ltspk.train.pretrained.load_pretrained_embedder", refuse)
    resumed = train(tmp, "stopped", "--pretrained_embedder", str(folder), "--embedder_lr_scale", "0.25")
    assert_same(outcome(resumed), outcome(tmp / "ref"))  # exactly the uninterrupted fine-tuning run
    refused = r"other parameter groups than this run's|embedder_lr_scale: 0.25 \(checkpoint\) vs None"
    with pytest.raises(Exception, match=refused):
        train(tmp, "stopped")  # resumed without fine-tuning: refused, named


def test_per_step_schedule_keeps_the_ratio_and_a_run_folder_is_a_source(ft):
    tmp, _, ref, *_ = ft
    text = hparams_text(ROOT / "hparams" / "demo_aam.yaml")
    text, n = re.subn(r"^lr_annealing: .*\n(?:    .*\n)*", f"lr_annealing: {CYCLIC}\n", text, flags=re.M)
    assert n == 1
    (tmp / "demo_aam_cyclic.yaml").write_text(text)
    log = []
    with pytest.MonkeyPatch.context() as m:
        record(m, log)
        train(tmp, "from_run", "--pretrained_embedder", str(ref), "--embedder_lr_scale", "0.1", epochs=1,
              yaml_name=str(tmp / "demo_aam_cyclic.yaml"))
    _, latest = checkpoints(ref)[-1]
    assert_state_equal(log[0], torch.load(latest / "embedding_model.ckpt", weights_only=True))
    seen = [(groups[0][1], groups[1][1]) for _, groups in log[1:]]
    assert len({h for h, _ in seen}) > 1  # the cyclic lr moved every step ...
    assert all(e == pytest.approx(0.1 * h, rel=1e-12, abs=0) for h, e in seen)  # ... and the embedder's with it


def test_a_pretrained_model_of_other_shapes_is_refused_before_training(ft):
    from ltspk.runtime.errors import DataError, HparamsError
    from ltspk.train.pretrained import PretrainedMismatch

    tmp, *_ = ft
    narrow = write_sb_folder(tmp / "sb_lin24", lin=24)
    with pytest.raises(PretrainedMismatch) as err:
        train(tmp, "mismatch", "--pretrained_embedder", str(narrow))
    msg = str(err.value)
    assert str(narrow) in msg and "fc.conv.weight: [24, 96, 1] there, [32, 96, 1] here" in msg
    assert "lin_neurons=24" in msg  # what the folder declares
    assert not (tmp / "mismatch" / "save").exists()  # refused before the data or the model were set up
    with pytest.raises(DataError, match="pretrained_embedder: folder not found"):
        train(tmp, "missing", "--pretrained_embedder", str(tmp / "nowhere"))
    (tmp / "empty_model").mkdir()
    (tmp / "empty_model" / "hyperparams.yaml").write_text("x: 1\n")
    with pytest.raises(DataError, match="missing embedding_model.ckpt"):
        train(tmp, "missing", "--pretrained_embedder", str(tmp / "empty_model"))
    with pytest.raises(HparamsError, match="embedder_lr_scale must be a number >= 0"):
        train(tmp, "bad_scale", "--pretrained_embedder", str(narrow), "--embedder_lr_scale", "-1")


def test_with_finetune_keys_adds_only_what_an_override_names():
    from ltspk.train.pretrained import with_finetune_keys

    text = hparams_text(ROOT / "hparams" / "folder_aam.yaml")
    assert with_finetune_keys(text, "lr: 0.1\nprep_options: !new:x.Y {a: 1}") == text
    added = with_finetune_keys(text, "pretrained_embedder: /m\nprep_options: !new:x.Y {a: 1}")
    assert added.startswith(text.rstrip("\n")) and added.endswith("pretrained_embedder: null\nembedder_lr_scale: 0.1\n")


def test_a_run_source_is_the_checkpoint_its_evaluation_uses(tmp_path):
    """run_checkpoints (RunEmbedder for identification, pretrained_embedder for fine-tuning): the best
    by ckpt_max_key, the mean of the last ckpt_average_last epochs, else the latest."""
    from test_identify import MODULES, _modules

    from ltspk.embedding.embedders import RunEmbedder, run_checkpoints
    from ltspk.runtime.averaging import mean_state_dicts
    from ltspk.runtime.checkpoints import AtomicCheckpointer
    from ltspk.train.pretrained import check_pretrained_embedder, load_pretrained_embedder

    def run(name, extra):
        dest = tmp_path / name
        dest.mkdir()
        (dest / "hyperparams.yaml").write_text(extra + MODULES.format(dim=8))
        states = []
        for epoch, acc in ((1, 40.0), (2, 60.0), (3, 50.0)):
            mods = _modules(8, seed=epoch)
            states.append(mods["embedding_model"].state_dict())
            AtomicCheckpointer(dest / "save", recoverables={"embedding_model": mods["embedding_model"],
                                                            "normalizer": mods["mean_var_norm"]}).save_checkpoint(
                meta={"epoch": epoch, "valid_acc": acc})
        return dest, states

    def loaded(dest):
        target = _modules(8, seed=9)["embedding_model"]
        reads = []
        with pytest.MonkeyPatch.context() as m:
            count_reads(m, reads)
            checked = check_pretrained_embedder(target, dest)  # as fine-tuning does: check, later load
            load_pretrained_embedder(target, dest, checked)
        files = [(c.path / "embedding_model.ckpt").resolve() for c in run_checkpoints(dest)[0]]
        assert sorted(reads) == sorted(files)  # each checkpoint's embedding model read once
        via_embedder = RunEmbedder(dest).modules["embedding_model"].state_dict()
        assert_state_equal(via_embedder, target.state_dict())
        return target.state_dict()

    best, states = run("best", "ckpt_max_key: valid_acc\n")
    assert "best checkpoint by highest valid_acc" in run_checkpoints(best)[1]
    assert_state_equal(loaded(best), states[1])
    avg, states = run("avg", "ckpt_average_last: 2\n")
    assert_state_equal(loaded(avg), mean_state_dicts([states[2], states[1]]))
    latest, states = run("latest", "")
    assert_state_equal(loaded(latest), states[2])
