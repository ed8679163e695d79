"""Exact resume (single process, num_workers 0): a run stopped mid-epoch or right after an
end-of-epoch checkpoint and resumed logs the same losses and ends with the same weights as the
uninterrupted run, and two uninterrupted runs of one seed are bit-identical.

Runs are in-process (recipes/train.py's ``main``) with a tiny ECAPA-TDNN on the synthetic
corpus; a stop is an exception raised from a Brain hook, so the resumed run has only what the
checkpoint holds (every module, optimiser, loader and generator is built anew).
"""

import importlib.util
import re

import pytest
import speechbrain as sb
import torch
import yaml
from test_train_e2e import ROOT, TINY

from ltspk.train.brain import SpeakerBrain

SMALL = [*TINY, "--embedding_model", "!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN {input_size: 40, "
         "channels: [16, 16, 48], kernel_sizes: [5, 3, 1], dilations: [1, 2, 1], attention_channels: 8, "
         "res2net_scale: 2, se_channels: 8, lin_neurons: 32}", "--emb_dim", "32", "--crop_seconds", "0.5",
         "--noprogressbar", "--ckpt_interval_minutes", "0", "--ckpt_interval_steps", "2"]
WEIGHTS = ("embedding_model", "classifier", "optimizer")


class Stop(Exception):
    """Stands for a kill: nothing after it runs."""


def train_main():
    spec = importlib.util.spec_from_file_location("ltspk_recipe_train", ROOT / "recipes" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def argv(tmp_path, name, *extra, yaml_name="demo_aam.yaml", epochs=2, evaluate=False):
    """A tiny run into tmp_path/name; corpus and preparation are shared by the runs in tmp_path."""
    return [str(ROOT / "hparams" / yaml_name), "--output_folder", str(tmp_path / name), "--data_folder",
            str(tmp_path / "corpus"), "--prepared_folder", str(tmp_path / "prepared"), *SMALL,
            "--number_of_epochs", str(epochs), "--evaluate_after_training", str(evaluate), *extra]


def train(tmp_path, name, *extra, **kwargs):
    train_main()(argv(tmp_path, name, *extra, **kwargs))
    return tmp_path / name


def checkpoints(out):
    found = [(yaml.safe_load((d / "CKPT.yaml").read_text()), d) for d in (out / "save").glob("CKPT+*")]
    return sorted(found, key=lambda md: md[0]["unixtime"])


def outcome(out):
    """Logged losses per epoch and the final checkpoint's weights and optimiser state."""
    meta, final = checkpoints(out)[-1]
    assert meta["end-of-epoch"] and meta["epoch"] == 2
    state = {k: torch.load(final / f"{k}.ckpt", weights_only=True) for k in WEIGHTS}
    return (out / "train_log.txt").read_text().splitlines(), state


def assert_same(a, b):
    assert a[0] == b[0]  # the train_log lines: epoch, lr and loss
    for k in WEIGHTS:
        flat_a, flat_b = _tensors(a[1][k]), _tensors(b[1][k])
        assert flat_a.keys() == flat_b.keys()
        for name in flat_a:
            assert torch.equal(flat_a[name], flat_b[name]), (k, name)


def _tensors(obj, prefix=""):
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, (list, tuple)) else ()
    out = {}
    for k, v in items:
        out.update(_tensors(v, f"{prefix}/{k}"))
    return out


def stop_after_batch(monkeypatch, epoch, step):
    def hook(self, batch, outputs, loss, should_step):
        if self.hparams.epoch_counter.current == epoch and self.step == step:
            raise Stop
    monkeypatch.setattr(SpeakerBrain, "on_fit_batch_end", hook)


def stop_after_epoch(monkeypatch, epoch):
    original = SpeakerBrain.on_stage_end

    def hook(self, stage, stage_loss, epoch_=None):
        original(self, stage, stage_loss, epoch_)  # logs and saves the end-of-epoch checkpoint (after validation)
        if stage == (sb.Stage.VALID if self.validating else sb.Stage.TRAIN) and epoch_ == epoch:
            raise Stop
    monkeypatch.setattr(SpeakerBrain, "on_stage_end", hook)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: threads only add overhead


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exact")
    return tmp, outcome(train(tmp, "ref"))


def test_two_runs_of_one_seed_are_identical(reference):
    tmp, ref = reference
    assert_same(outcome(train(tmp, "again")), ref)


def test_killed_mid_epoch_then_resumed_equals_uninterrupted(reference, monkeypatch):
    tmp, ref = reference
    with monkeypatch.context() as m:
        stop_after_batch(m, epoch=2, step=3)  # intra-epoch checkpoint after step 2; step 3 is lost
        with pytest.raises(Stop):
            train(tmp, "killed")
    meta, last = checkpoints(tmp / "killed")[-1]
    assert meta["end-of-epoch"] is False and (last / "dataloader-TRAIN.ckpt").read_text() == "2"
    assert int(yaml.safe_load((last / "counter.ckpt").read_text())) == 2
    assert_same(outcome(train(tmp, "killed")), ref)


def test_stopped_after_end_of_epoch_checkpoint_then_resumed_equals_uninterrupted(reference, monkeypatch):
    tmp, ref = reference
    with monkeypatch.context() as m:
        stop_after_epoch(m, epoch=1)
        with pytest.raises(Stop):
            train(tmp, "stopped")
    meta, _ = checkpoints(tmp / "stopped")[-1]
    assert meta["end-of-epoch"] and meta["epoch"] == 1
    assert not (tmp / "stopped" / ".ltspk.lock").exists()  # released on the exception
    assert_same(outcome(train(tmp, "stopped")), ref)


# ---- refused before training, with the file named -------------------------------------------

def test_empty_training_manifest_is_named(tmp_path, monkeypatch):
    from ltspk.runtime.atomic import write_json
    from ltspk.runtime.errors import DataError

    prepared = tmp_path / "prepared_by_hand"
    prepared.mkdir()
    (prepared / "train.csv").write_text("ID,duration,wav,start,stop,spk_id\n")
    write_json(prepared / "counts.json", {"counts": {"s1": 3}, "shot_groups": {"s1": "few"},
                                          "shot_thresholds": {"many": "n > 8", "medium": "", "few": "n < 4"}})
    monkeypatch.setattr("ltspk.train.experiment.prepare_data", lambda hparams: prepared)
    with pytest.raises(DataError, match="^" + re.escape(f"{prepared / 'train.csv'}: no training data")):
        train(tmp_path, "empty")


def test_batch_larger_than_the_training_set_is_refused(reference):
    from ltspk.runtime.errors import DataError

    tmp, _ = reference
    args = argv(tmp, "big_batch")
    args[args.index("--train_dataloader_options") + 1] = "{batch_size: 512, num_workers: 0, drop_last: True}"
    with pytest.raises(DataError, match=r"train.csv: batch_size 512 is larger than the \d+ training utterances and "
                                        "drop_last is set"):
        train_main()(args)
