"""Samplers: empirical class frequencies against p_j = n_j^q / sum n^q, and DDP sharding."""

import numpy as np
import pytest
from speechbrain.dataio.sampler import DistributedSamplerWrapper

from ltspk.data.samplers import ClassAwareSampler, class_probabilities, make_sampler, progressive_probabilities

COUNTS = np.array([400, 100, 25, 4])
LABELS = np.repeat(np.arange(4), COUNTS)


def test_probabilities_by_hand():
    assert class_probabilities(COUNTS, 1.0) == pytest.approx(COUNTS / 529)
    assert class_probabilities(COUNTS, 0.0) == pytest.approx([0.25] * 4)
    # sqrt: 20, 10, 5, 2 over 37
    assert class_probabilities(COUNTS, 0.5) == pytest.approx(np.array([20, 10, 5, 2]) / 37)
    # progressive at t = 1 of T = 4: 0.75 * IB + 0.25 * CB
    assert progressive_probabilities(COUNTS, 1, 4) == pytest.approx(0.75 * COUNTS / 529 + 0.25 * 0.25)
    assert progressive_probabilities(COUNTS, 9, 4) == pytest.approx([0.25] * 4)
    assert class_probabilities([3, 0, 1], 0.0) == pytest.approx([0.5, 0.0, 0.5])


@pytest.mark.parametrize("kind,q", [("class", 0.0), ("sqrt", 0.5)])
def test_empirical_frequencies(kind, q):
    s = make_sampler(kind, LABELS, seed=1, num_samples=200_000)
    freq = np.bincount(LABELS[list(s)], minlength=4) / 200_000
    assert freq == pytest.approx(class_probabilities(COUNTS, q), abs=0.005)


def test_instance_balanced_is_a_shuffle():
    s = make_sampler("instance", LABELS, seed=0)
    order = list(s)
    assert sorted(order) == list(range(len(LABELS)))
    s.set_epoch(1)
    assert list(s) != order


def test_progressive_changes_with_epoch():
    s = make_sampler("progressive", LABELS, seed=0, num_samples=100_000, total_epochs=2)
    s.set_epoch(0)
    f0 = np.bincount(LABELS[list(s)], minlength=4) / 100_000
    s.set_epoch(2)
    f2 = np.bincount(LABELS[list(s)], minlength=4) / 100_000
    assert f0 == pytest.approx(COUNTS / 529, abs=0.006)
    assert f2 == pytest.approx([0.25] * 4, abs=0.006)


def test_ddp_ranks_get_disjoint_equal_shares():
    base = ClassAwareSampler(LABELS, q=0.0, num_samples=1001, seed=5)
    shards = []
    for rank in range(2):
        w = DistributedSamplerWrapper(ClassAwareSampler(LABELS, q=0.0, num_samples=1001, seed=5),
                                      num_replicas=2, rank=rank, shuffle=False)
        w.set_epoch(3)
        shards.append(list(w))
    base.set_epoch(3)
    draw = list(base)
    assert len(shards[0]) == len(shards[1]) == 501
    # rank r takes positions r, r+2, ... of the one shared draw (padded by one to even out)
    padded = draw + draw[:1]
    assert shards[0] == padded[0::2] and shards[1] == padded[1::2]
    # the two shares together are exactly the one draw (the padded position aside)
    assert sorted(shards[0] + shards[1][:-1]) == sorted(draw)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("balanced", LABELS)
    with pytest.raises(ValueError, match="total_epochs"):
        make_sampler("progressive", LABELS)


def test_brain_calls_set_epoch_on_a_custom_sampler():
    import torch
    from speechbrain.dataio.dataset import DynamicItemDataset

    from ltspk.train.brain import SpeakerBrain

    brain = SpeakerBrain(modules={"m": torch.nn.Linear(1, 1)}, run_opts={"device": "cpu"})
    sampler = make_sampler("class", LABELS, seed=0)
    ds = DynamicItemDataset({str(i): {"x": i} for i in range(len(LABELS))})
    brain.make_dataloader(ds, stage=__import__("speechbrain").Stage.TRAIN, ckpt_prefix=None, sampler=sampler)
    assert brain.train_sampler is sampler
