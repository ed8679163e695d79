import math

import pytest
import torch

from ltspk.train.schedulers import CosineScheduler


def test_cosine_scheduler_by_hand():
    s = CosineScheduler(0.2, 0.0, 4)
    # value(e) = 0.1 * (1 + cos(pi e / 4)), e = 0..3
    assert s.value_at_epoch == pytest.approx([0.2, 0.1 * (1 + math.sqrt(0.5)), 0.1, 0.1 * (1 - math.sqrt(0.5))])
    assert s(1) == pytest.approx((0.2, 0.1 * (1 + math.sqrt(0.5))))   # epoch 1 ran at 0.2, epoch 2 runs at ...
    assert s(4)[1] == pytest.approx(0.1 * (1 - math.sqrt(0.5)))        # last epoch: stays
    # the same curve as torch's CosineAnnealingLR stepped per epoch
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.2)
    ref = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4)
    torch_lrs = []
    for _ in range(4):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert s.value_at_epoch == pytest.approx(torch_lrs)
    with pytest.raises(ValueError):
        CosineScheduler(0.1, 0.0, 0)
