"""A per-step learning-rate schedule and the margin schedule in real (tiny) training runs: the lr and
margin of every step follow their formulas, and a run killed mid-epoch and resumed continues the
same curves (and ends with the same weights) as the uninterrupted run.

Runs are in-process as in test_resume_exact: the demo AAM file with a margin schedule and the
schedule in place of its per-epoch one."""

import re

import pytest
import yaml
from test_resume_exact import ROOT, Stop, assert_same, checkpoints, outcome, train

from ltspk.train.brain import SpeakerBrain
from ltspk.train.layering import hparams_text, merge_text

MARGIN = ("margin_schedule: !new:ltspk.heads.aam.MarginScheduler {initial_margin: 0.0, final_margin: 0.2, "
          "increase_start_epoch: 1, fix_start_epoch: 3}\n")
SCHEDULES = {
    # SpeechBrain's VoxCeleb schedule (on_batch_end), half cycle of 3 steps
    "cyclic": "!new:speechbrain.nnet.schedulers.CyclicLRScheduler {base_lr: 0.0, max_lr: 0.01, step_size: 3}",
    # WeSpeaker's warm-up then exponential decay (__call__(opt)), warm-up 1 epoch of 2, from zero
    "wespeaker": "!new:ltspk.train.schedulers.WarmupExponentialDecay {initial_lr: 0.01, final_lr: 0.0001, num_epochs: 2, "
                 "warm_up_epoch: 1, warm_from_zero: True}",
}
TRIANGLE = [1 / 3, 2 / 3, 1.0, 2 / 3, 1 / 3, 0.0]  # CyclicLR at steps 1..6 (x max_lr), repeated


def variant(folder, name, schedule):
    """demo_aam.yaml with ``schedule`` as lr_annealing and a margin schedule, written to ``folder``."""
    text = hparams_text(ROOT / "hparams" / "demo_aam.yaml")
    text, n = re.subn(r"^lr_annealing: .*\n(?:    .*\n)*", f"lr_annealing: {schedule}\n", text, flags=re.M)
    assert n == 1
    path = folder / f"demo_aam_{name}.yaml"
    path.write_text(merge_text(text, MARGIN))
    return path


def record(monkeypatch, log, stop=None):
    """Record (epoch, step, lr, margin) of every training step; raise Stop after ``stop`` = (epoch, step)."""
    def hook(self, batch, outputs, loss, should_step):
        at = (self.hparams.epoch_counter.current, self.step)
        log.append((*at, self.optimizer.param_groups[0]["lr"], self.head.margin))
        if at == stop:
            raise Stop
    monkeypatch.setattr(SpeakerBrain, "on_fit_batch_end", hook)


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_step_schedule_and_margin_resume_on_the_same_curves(name, tmp_path_factory, monkeypatch):
    tmp = tmp_path_factory.getbasetemp() / "tiny_runs"  # corpus and preparation shared by the runs
    tmp.mkdir(exist_ok=True)
    hparams_file = variant(tmp, name, SCHEDULES[name])
    args = ()
    ref = []
    with monkeypatch.context() as m:
        record(m, ref)
        ref_out = train(tmp, f"{name}_ref", *args, yaml_name=str(hparams_file))
    steps = max(s for e, s, *_ in ref if e == 1)  # steps an epoch (E)
    assert [(e, s) for e, s, *_ in ref] == [(e, s) for e in (1, 2) for s in range(1, steps + 1)]

    # the formulas, step by step: k = (e - 1) E + s optimiser steps so far
    for e, s, lr, margin in ref:
        k = (e - 1) * steps + s
        if name == "cyclic":
            assert lr == pytest.approx(0.01 * TRIANGLE[(k - 1) % 6], abs=1e-12)
        else:  # lr(i) = 0.01 * min(1, i / E) * 0.01^(i / 2E), i = k - 1
            i = k - 1
            assert lr == pytest.approx(0.01 * min(1.0, i / steps) * 0.01 ** (i / (2 * steps)))
        assert margin == pytest.approx(0.2 * (1 - 0.001 ** ((k - 1) / (2 * steps))), abs=1e-6)
    assert "margin:" in (ref_out / "train_log.txt").read_text()
    meta, last = checkpoints(ref_out)[-1]
    if name == "cyclic":
        assert (last / "lr_annealing.ckpt").is_file()  # the schedule's state is in every checkpoint
    else:  # a function of the Brain's optimizer_step, which every checkpoint holds
        assert not (last / "lr_annealing.ckpt").exists()
        assert yaml.safe_load((last / "brain.ckpt").read_text())["optimizer_step"] == 2 * steps

    # killed after step 3 of epoch 2 (the intra-epoch checkpoint is after step 2), then resumed
    killed, resumed = [], []
    with monkeypatch.context() as m:
        record(m, killed, stop=(2, 3))
        with pytest.raises(Stop):
            train(tmp, f"{name}_killed", *args, yaml_name=str(hparams_file))
    meta, last = checkpoints(tmp / f"{name}_killed")[-1]
    assert meta["end-of-epoch"] is False and int(yaml.safe_load((last / "counter.ckpt").read_text())) == 2
    with monkeypatch.context() as m:
        record(m, resumed)
        out = train(tmp, f"{name}_killed", *args, yaml_name=str(hparams_file))
    assert resumed[0][:2] == (2, 3)
    assert killed[:steps + 2] + resumed == ref  # same lr and margin at every step
    assert_same(outcome(out), outcome(ref_out))  # same logged losses and final weights
