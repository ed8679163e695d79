"""Crash-safe checkpoints.

SpeechBrain 1.1's ``Checkpointer`` writes a checkpoint's ``CKPT.yaml`` first and its parameter
files after; a directory counts as a checkpoint as soon as ``CKPT.yaml`` exists. A process killed
while saving therefore leaves a partial checkpoint that recovery picks as the newest. Here the
metafile is written under a temporary name and renamed into place (atomically) only after every
parameter file is on disk, so a partial checkpoint is never taken for a checkpoint.

Under DDP every process waits for that rename before going on: SpeechBrain's
``delete_checkpoints`` then lists the same checkpoints on every process (each deletion is a
collective call; processes that listed different ones would wait for each other forever).
"""

import logging
import os
import shutil

from speechbrain.utils.checkpoints import METAFNAME, Checkpointer
from speechbrain.utils.distributed import ddp_barrier, if_main_process

log = logging.getLogger(__name__)
PENDING = METAFNAME + ".pending"


class AtomicCheckpointer(Checkpointer):
    def _save_checkpoint_metafile(self, fpath, meta_to_include={}, end_of_epoch=True):  # noqa: B006 (SB's signature)
        return super()._save_checkpoint_metafile(fpath.with_name(PENDING), meta_to_include, end_of_epoch)

    def save_checkpoint(self, meta={}, end_of_epoch=True, name=None, verbosity=logging.INFO):  # noqa: B006
        ckpt = super().save_checkpoint(meta=meta, end_of_epoch=end_of_epoch, name=name, verbosity=verbosity)
        if ckpt is not None and if_main_process():
            pending = ckpt.path / PENDING
            with open(pending, "rb") as f:
                os.fsync(f.fileno())
            os.replace(pending, ckpt.path / METAFNAME)
        ddp_barrier()
        return ckpt

    def remove_incomplete(self):
        """Delete checkpoint folders a crash left without a metafile; returns their names."""
        removed = []
        if not if_main_process() or not self.checkpoints_dir.is_dir():
            return removed
        for d in self.checkpoints_dir.iterdir():
            if d.is_dir() and d.name.startswith("CKPT+") and not (d / METAFNAME).exists():
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d.name)
        if removed:
            log.warning("removed %d incomplete checkpoint(s) left by an interrupted save: %s", len(removed), removed)
        return removed
