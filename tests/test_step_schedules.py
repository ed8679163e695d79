"""Per-step learning-rate schedules and WeSpeaker's margin schedule against values computed by
hand from their formulas, and how ltspk.train.brain drives each SpeechBrain scheduler."""

import pytest
import torch
from speechbrain.nnet.schedulers import (
    CyclicLRScheduler,
    LinearScheduler,
    NewBobScheduler,
    NoamScheduler,
    ReduceLROnPlateau,
    StepScheduler,
    WarmAndExpDecayLRSchedule,
    WarmCoolDecayLRSchedule,
)

from ltspk.heads.aam import MarginScheduler
from ltspk.train import schedulers as S


def optimizer(lr=1.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def lrs(schedule, opt, n):
    """The lr of steps 0 .. n - 1, driven as ltspk.train.brain drives the schedule (with the step count or not)."""
    with_count = S.schedule_kind(schedule) == S.STEP_WITH_COUNT
    out = []
    for step in range(n):
        schedule(opt, step) if with_count else schedule(opt)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_wespeaker_exponential_decrease_by_hand():
    # initial 0.1, final 0.001, 4 epochs of 10 steps (T = 40), warm-up 1 epoch (W = 10):
    # lr(i) = c(i) 0.1 (0.01)^(i / 40); from zero: c(i) = i / 10 during warm-up, then 1
    s = S.WarmupExponentialDecay(0.1, 0.001, num_epochs=4, warm_up_epoch=1, warm_from_zero=True)
    s.set_steps_per_epoch(10)
    got = lrs(s, optimizer(), 41)
    assert got[0] == 0.0
    assert got[5] == pytest.approx(0.05 * 0.5623413252)      # 0.1 * 0.5 * 10^(-2 * 5/40)
    assert got[10] == pytest.approx(0.0316227766)            # 0.1 * 10^(-0.5): decay runs through the warm-up
    assert got[20] == pytest.approx(0.01)                    # 0.1 * 10^(-1)
    assert got[40] == pytest.approx(0.001)                   # final_lr at T
    # scale_ratio 4, not from zero: c(i) = 3 i / 10 + 1 during warm-up, then 4
    s = S.WarmupExponentialDecay(0.1, 0.001, num_epochs=4, warm_up_epoch=1, scale_ratio=4, steps_per_epoch=10)
    assert [s.lr_at(i) for i in (0, 5, 10)] == pytest.approx([0.1, 2.5 * 0.1 * 0.5623413252, 4 * 0.0316227766])


def test_speechbrains_warm_and_exp_decay_is_another_curve():
    # SpeechBrain holds the decay until the warm-up ends and decays over T - W steps: lr0 at step W,
    # 0.1 * 0.01^(15/30) = 0.01 at step 25, where WeSpeaker's formula gives 0.0316 and 0.1 * 10^(-1.25)
    sb = lrs(WarmAndExpDecayLRSchedule(lr=0.1, n_warmup_steps=10, total_steps=40, decay_factor=0.01), optimizer(), 26)
    ws = S.WarmupExponentialDecay(0.1, 0.001, num_epochs=4, warm_up_epoch=1, warm_from_zero=True, steps_per_epoch=10)
    assert sb[10] == pytest.approx(0.1) and ws.lr_at(10) == pytest.approx(0.0316227766)
    assert sb[25] == pytest.approx(0.01) and ws.lr_at(25) == pytest.approx(0.0056234133)


def test_wespeaker_schedule_is_a_function_of_the_step_count():
    """The Brain passes its optimizer_step (in every checkpoint): a fresh schedule at step 7 sets the lr
    the running one set at step 7, so the schedule has no state to checkpoint."""
    s = S.WarmupExponentialDecay(0.1, 0.001, num_epochs=4, warm_up_epoch=1, steps_per_epoch=10)
    running = lrs(s, optimizer(), 8)
    t = S.WarmupExponentialDecay(0.1, 0.001, num_epochs=4, warm_up_epoch=1, steps_per_epoch=10)
    opt = optimizer()
    t(opt, 7)
    assert opt.param_groups[0]["lr"] == running[7] == pytest.approx(s.lr_at(7))
    assert not hasattr(t, "save") and not hasattr(t, "current_step")


def test_epoch_cyclic_is_speechbrains_cycle_in_epochs():
    s = S.EpochCyclicLRScheduler(base_lr=0.0, max_lr=0.01, step_size_epochs=0.5)
    s.set_steps_per_epoch(6)  # half cycle = 3 steps: 1/3, 2/3, 1, 2/3, 1/3, 0 of max_lr, repeated
    opt = optimizer()
    got = []
    for _ in range(7):
        s.on_batch_end(opt)
        got.append(opt.param_groups[0]["lr"])
    assert got == pytest.approx([0.01 / 3, 0.02 / 3, 0.01, 0.02 / 3, 0.01 / 3, 0.0, 0.01 / 3])
    assert isinstance(s, CyclicLRScheduler)  # SpeechBrain's state and checkpoint hooks


def test_how_each_scheduler_is_driven():
    kind = S.schedule_kind
    assert kind(CyclicLRScheduler()) == S.STEP_ON_BATCH_END
    assert kind(S.EpochCyclicLRScheduler()) == S.STEP_ON_BATCH_END
    assert kind(WarmAndExpDecayLRSchedule(1, 2, 4)) == S.STEP
    assert kind(NoamScheduler(1.0, 3)) == S.STEP
    assert kind(S.WarmupExponentialDecay(0.1, 0.001, 4)) == S.STEP_WITH_COUNT
    assert kind(WarmCoolDecayLRSchedule(1, 2, 1, 6)) == S.STEP_WITH_COUNT
    assert kind(LinearScheduler(1.0, 0.1, 4)) == S.EPOCH
    assert kind(StepScheduler(1.0)) == S.EPOCH
    assert kind(S.CosineScheduler(1.0, 0.0, 4)) == S.EPOCH
    assert kind(NewBobScheduler(1.0)) == S.VALID_METRIC
    assert kind(ReduceLROnPlateau()) == S.PLATEAU
    assert kind(None) is None


def test_margin_schedule_by_hand():
    # WeSpeaker: 0 before epoch 2 (steps < 10), 0.2 (1 - 0.001^x) with x = (i - 10) / 20 up to the start
    # of epoch 4 (step 30), then 0.2; 10 steps an epoch
    m = MarginScheduler(initial_margin=0.0, final_margin=0.2, increase_start_epoch=2, fix_start_epoch=4)
    got = [m.margin_at(i, 10) for i in (0, 9, 10, 15, 20, 25, 29, 30, 100)]
    expected = [0.0, 0.0, 0.0,
                0.2 * (1 - 0.1778279410),   # 0.001^0.25 = 10^-0.75
                0.2 * (1 - 0.0316227766),   # 10^-1.5
                0.2 * (1 - 0.0056234133),   # 10^-2.25
                0.2 * (1 - 0.0014125375),   # x = 19/20: 10^-2.85
                0.2, 0.2]
    assert got == pytest.approx(expected, abs=1e-6)  # WeSpeaker's ln(1e-3 / (1 + 1e-6)) moves these < 1e-7
    linear = MarginScheduler(0.1, 0.3, 2, 4, increase_type="linear")
    assert [linear.margin_at(i, 10) for i in (5, 10, 15, 25, 30)] == pytest.approx([0.1, 0.1, 0.15, 0.25, 0.3])
    with pytest.raises(ValueError):
        MarginScheduler(increase_type="cosine")
