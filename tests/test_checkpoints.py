"""A save that crashes half-way leaves no checkpoint that recovery could pick."""

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer, mark_as_loader, mark_as_saver, register_checkpoint_hooks

from ltspk.checkpoints import AtomicCheckpointer


@register_checkpoint_hooks
class Exploding:
    @mark_as_saver
    def save(self, path):
        raise KeyboardInterrupt("killed while saving")

    @mark_as_loader
    def load(self, path, end_of_epoch=True):
        pass


def test_crash_during_save_leaves_no_checkpoint(tmp_path):
    lin = torch.nn.Linear(2, 2)
    ok = AtomicCheckpointer(tmp_path, recoverables={"lin": lin})
    first = ok.save_checkpoint(meta={"step": 1})
    crashing = AtomicCheckpointer(tmp_path, recoverables={"lin": lin, "boom": Exploding()})
    with pytest.raises(KeyboardInterrupt):
        crashing.save_checkpoint(meta={"step": 2})
    assert [c.meta["step"] for c in ok.list_checkpoints()] == [1]
    assert ok.find_checkpoint().path == first.path
    assert len(ok.remove_incomplete()) == 1 and len(list(tmp_path.iterdir())) == 1


def test_speechbrain_checkpointer_would_list_the_partial_one(tmp_path):
    # the failure the subclass exists for: SpeechBrain's own Checkpointer lists it
    crashing = Checkpointer(tmp_path, recoverables={"lin": torch.nn.Linear(2, 2), "boom": Exploding()})
    with pytest.raises(KeyboardInterrupt):
        crashing.save_checkpoint(meta={"step": 2})
    assert [c.meta["step"] for c in crashing.list_checkpoints()] == [2]


class Payload:
    """Any pickled object: loading it would run code from the file."""


def test_recovery_refuses_pickled_objects(tmp_path):
    lin = torch.nn.Linear(2, 2)
    ckpt = AtomicCheckpointer(tmp_path, recoverables={"lin": lin}).save_checkpoint()
    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2), "evil": Payload()}, ckpt.path / "lin.ckpt")
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        AtomicCheckpointer(tmp_path, recoverables={"lin": torch.nn.Linear(2, 2)}).recover_if_possible()
