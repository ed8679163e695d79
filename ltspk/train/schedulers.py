"""Learning-rate schedules SpeechBrain lacks, in SpeechBrain's interfaces, and how the Brain drives any schedule.

- per epoch, SpeechBrain's ``LinearScheduler`` interface ``scheduler(epoch) -> (value used in
  that epoch, value for the next one)``: ``CosineScheduler``;
- per optimiser step, in SpeechBrain's interfaces: ``WarmupExponentialDecay`` (WeSpeaker's warm-up
  then exponential decay; ``scheduler(opt, num_updates)``, no state of its own) and
  ``EpochCyclicLRScheduler`` (SpeechBrain's cyclic schedule with its half cycle in epochs; its
  ``on_batch_end(opt)`` and checkpoint hooks);
- ``schedule_kind``: whether ``ltspk.train.brain`` calls a schedule before every step or at the end
  of every epoch (on the validation loss for ``NewBobScheduler`` / ``ReduceLROnPlateau``).
"""

import inspect
import math

from speechbrain.nnet.schedulers import CyclicLRScheduler


class CosineScheduler:
    """Cosine annealing per epoch, as ``torch.optim.lr_scheduler.CosineAnnealingLR`` with
    ``T_max = epoch_count`` stepped once per epoch (Tang et al.'s SGD schedule):

        value(e) = final + (initial - final) * (1 + cos(pi * e / epoch_count)) / 2,  e = 0 .. epoch_count - 1
    """

    def __init__(self, initial_value, final_value=0.0, epoch_count=1):
        if epoch_count < 1:
            raise ValueError(f"epoch_count must be >= 1, got {epoch_count}")
        self.value_at_epoch = [final_value + (initial_value - final_value) * (1 + math.cos(math.pi * e / epoch_count)) / 2
                               for e in range(int(epoch_count))]

    def __call__(self, current_epoch):
        old_index = max(0, current_epoch - 1)
        index = min(current_epoch, len(self.value_at_epoch) - 1)
        return self.value_at_epoch[old_index], self.value_at_epoch[index]


# ---- per-step schedules ------------------------------------------------------------------------


class WarmupExponentialDecay:
    """WeSpeaker's ``ExponentialDecrease`` (``wespeaker/utils/schedulers.py``), per optimiser step,
    with SpeechBrain's per-step interface ``scheduler(opt, num_updates)`` (as ``WarmCoolDecayLRSchedule``):
    the Brain passes its ``optimizer_step``, which every checkpoint holds, so the schedule keeps no
    state of its own and a resumed run continues its curve.

    With E steps an epoch (given by the Brain through ``set_steps_per_epoch``), T = num_epochs E
    and W = warm_up_epoch E, the lr of step i (0, 1, ...) is

        lr(i) = c(i) * initial_lr * (final_lr / initial_lr) ** (i / T)
        c(i)  = scale_ratio * i / W                      during warm-up, warm_from_zero
              = (scale_ratio - 1) * i / W + 1            during warm-up, not from zero, scale_ratio > 1
              = scale_ratio                              otherwise

    SpeechBrain's ``WarmAndExpDecayLRSchedule`` is not the same curve: it holds the decay until
    the warm-up ends and decays over T - W steps (lr = lr0 at the end of warm-up, where this
    gives initial_lr r^(W/T)), so this class carries WeSpeaker's formula (``tests/test_schedulers.py``).
    """

    def __init__(self, initial_lr, final_lr, num_epochs, warm_up_epoch=6, scale_ratio=1.0, warm_from_zero=False,
                 steps_per_epoch=None):
        if initial_lr <= 0 or final_lr <= 0:
            raise ValueError("initial_lr and final_lr must be > 0 (the decay is exponential)")
        self.initial_lr, self.final_lr = float(initial_lr), float(final_lr)
        self.num_epochs, self.warm_up_epoch = float(num_epochs), float(warm_up_epoch)
        self.scale_ratio, self.warm_from_zero = float(scale_ratio), bool(warm_from_zero)
        self.steps_per_epoch = steps_per_epoch

    def set_steps_per_epoch(self, steps):
        self.steps_per_epoch = int(steps)

    def lr_at(self, step):
        if not self.steps_per_epoch:
            raise RuntimeError("WarmupExponentialDecay needs the number of steps an epoch (set_steps_per_epoch)")
        total = self.num_epochs * self.steps_per_epoch
        warm = self.warm_up_epoch * self.steps_per_epoch
        coeff = self.scale_ratio
        if step < warm:
            if self.warm_from_zero:
                coeff = self.scale_ratio * step / warm
            elif self.scale_ratio > 1:
                coeff = (self.scale_ratio - 1) * step / warm + 1.0
        return coeff * self.initial_lr * math.exp(step / total * math.log(self.final_lr / self.initial_lr))

    def __call__(self, opt, num_updates):
        old = opt.param_groups[0]["lr"]
        lr = self.lr_at(num_updates)
        for group in opt.param_groups:
            group["lr"] = lr
        return old, lr


class EpochCyclicLRScheduler(CyclicLRScheduler):
    """SpeechBrain's ``CyclicLRScheduler`` with its half cycle given in epochs
    (``step_size_epochs``) instead of steps, for corpora of another size than VoxCeleb
    (SpeechBrain's 65,000 steps are about two ltspk epochs of VoxCeleb2 dev at batch 32).
    The step size is set from the Brain's steps an epoch when training starts; state and
    checkpoint hooks are SpeechBrain's (``clr_iterations``)."""

    def __init__(self, base_lr=0.001, max_lr=0.006, step_size_epochs=2.0, **kwargs):
        super().__init__(base_lr=base_lr, max_lr=max_lr, step_size=1, **kwargs)
        self.step_size_epochs = float(step_size_epochs)

    def set_steps_per_epoch(self, steps):
        self.step_size = max(1.0, self.step_size_epochs * int(steps))


# ---- how the Brain drives a schedule -----------------------------------------------------------

STEP_ON_BATCH_END = "on_batch_end"   # CyclicLRScheduler: on_batch_end(opt) before every step
STEP = "step"                        # __call__(opt): WarmAndExpDecayLRSchedule, NoamScheduler, ...
STEP_WITH_COUNT = "step_with_count"  # __call__(opt, num_updates): WarmCoolDecayLRSchedule, TriStageLRSchedule
EPOCH = "epoch"                      # __call__(epoch) -> (old, new): LinearScheduler, StepScheduler, CosineScheduler
VALID_METRIC = "valid_metric"        # __call__(metric_value) -> (old, new): NewBobScheduler (validation loss)
PLATEAU = "plateau"                  # __call__(optim_list, epoch, loss) -> (old, new): ReduceLROnPlateau


def schedule_kind(scheduler):
    """How a SpeechBrain-style scheduler is driven, from its interface (None: no scheduler)."""
    if scheduler is None:
        return None
    if callable(getattr(scheduler, "on_batch_end", None)):
        return STEP_ON_BATCH_END
    params = [p for p in inspect.signature(scheduler.__call__).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [p.name for p in params]
    if not names:
        raise ValueError(f"cannot tell how to drive the schedule {type(scheduler).__name__}: its __call__ takes "
                         "no argument")
    if names[0] in ("opt", "optimizer", "optim"):
        return STEP_WITH_COUNT if len(names) >= 2 else STEP
    if names[0] in ("optim_list", "optimizers"):
        return PLATEAU
    if names[0] in ("metric_value", "metric", "loss"):
        return VALID_METRIC
    return EPOCH


def per_step(kind):
    return kind in (STEP_ON_BATCH_END, STEP, STEP_WITH_COUNT)
