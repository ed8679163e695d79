"""Model averaging over the last N epoch checkpoints (WeSpeaker's ``average_model.py``).

The averaged parameters are the plain mean of each tensor over the N checkpoints (BatchNorm
running means and variances included, as WeSpeaker averages every entry of the state dict);
integer and boolean entries (BatchNorm's ``num_batches_tracked``, a head's ``has_prior``) are
taken from the most recent checkpoint. Loading goes through SpeechBrain's
``average_checkpoints``; the result is written as an ordinary SpeechBrain checkpoint
(``CKPT.yaml`` + ``<name>.ckpt``) in its own folder, so that ``Checkpointer(folder,
recoverables).recover_if_possible()`` loads it, and training never resumes from it.
"""

import logging
import shutil
from pathlib import Path

import torch
from speechbrain.utils.checkpoints import average_checkpoints

from ltspk.runtime.checkpoints import AtomicCheckpointer, read_weights

log = logging.getLogger(__name__)
AVERAGED = ("embedding_model", "classifier")  # the recoverables whose parameters are averaged


def mean_state_dicts(state_dicts):
    """Mean of floating-point entries over an iterable of state dicts (accumulated in float64, cast
    back); other entries from the first state dict."""
    total, first, count = None, None, 0
    for sd in state_dicts:
        count += 1
        if first is None:
            first = sd
            total = {k: v.double().clone() for k, v in sd.items() if torch.is_floating_point(v)}
            continue
        if sd.keys() != first.keys():
            raise ValueError("the checkpoints to average hold different parameters")
        for k in total:
            total[k] += sd[k].double()
    if count == 0:
        raise ValueError("no state dicts to average")
    return {k: (total[k] / count).to(v.dtype) if k in total else v for k, v in first.items()}


def average_into(modules, checkpoints, names=AVERAGED):
    """Load into ``modules[name]`` the mean of ``name`` over ``checkpoints`` (most recent first)."""
    for name in names:
        state = average_checkpoints(checkpoints, name, parameter_loader=_load, averager=mean_state_dicts)
        modules[name].load_state_dict(state)


def _load(path, map_location="cpu"):

    return read_weights(path, map_location)


def write_averaged(folder, recoverables, meta, name):
    """Save ``recoverables`` as the only checkpoint in ``folder`` (any earlier one is removed)."""

    folder = Path(folder)
    if folder.is_dir():
        for old in folder.glob("CKPT+*"):
            shutil.rmtree(old, ignore_errors=True)
    checkpointer = AtomicCheckpointer(folder, recoverables=recoverables)
    return checkpointer.save_checkpoint(meta=meta, name=name)
