"""Per-epoch learning-rate schedules with SpeechBrain's ``LinearScheduler`` interface:
``scheduler(epoch) -> (value used in that epoch, value for the next one)``."""

import math


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
