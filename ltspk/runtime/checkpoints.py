"""Crash-safe checkpoints.

SpeechBrain 1.1's ``Checkpointer`` writes a checkpoint's ``CKPT.yaml`` first and its parameter
files after; a directory counts as a checkpoint as soon as ``CKPT.yaml`` exists. A process killed
while saving therefore leaves a partial checkpoint that recovery picks as the newest. Here the
metafile is written under a temporary name and renamed into place (atomically) only after every
parameter file is on disk, so a partial checkpoint is never taken for a checkpoint.

Under DDP every process waits for that rename before going on: SpeechBrain's
``delete_checkpoints`` then lists the same checkpoints on every process (each deletion is a
collective call; processes that listed different ones would wait for each other forever).

A checkpoint file that cannot be written (no space left on device, a read-only folder) or read
(empty, truncated, pickled objects that ``torch.load(weights_only=True)`` refuses, weights of another
model) is a ``CheckpointError`` naming the file and what is wrong (``save_problem``, ``load_problem``),
never PyTorch's bare ``[enforce fail at inline_container.cc]`` or an unpickling traceback.

``describe_checkpoint`` says what a checkpoint of a run is (epoch, optimiser step, mid-epoch or not,
planned epochs and their recorded extensions): evaluation records it with its results.
"""

import errno
import logging
import os
import pickle
import shutil
from pathlib import Path

from speechbrain.utils.checkpoints import (
    DEFAULT_LOAD_HOOKS,
    DEFAULT_SAVE_HOOKS,
    METAFNAME,
    Checkpointer,
    get_default_hook,
)
from speechbrain.utils.distributed import ddp_barrier, if_main_process

from ltspk.runtime.errors import CheckpointError, LtspkError
from ltspk.runtime.fingerprint import read_settings

log = logging.getLogger(__name__)
PENDING = METAFNAME + ".pending"


def _free_space(path):
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        free = shutil.disk_usage(p).free
    except OSError:
        return "free space unknown"
    return f"{free / 2**30:.2f} GiB free there now" if free >= 2**30 else f"{free / 2**20:.1f} MiB free there now"


def save_problem(path, e):
    """What went wrong writing the checkpoint file ``path`` (None: not a write failure ltspk names)."""
    if isinstance(e, OSError):
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return f"cannot save the checkpoint: no space left on device ({_free_space(path)}): free some space or " \
                   "keep fewer checkpoints, then resume"
        if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return f"cannot save the checkpoint: {e.strerror} (is the output folder read-only?)"
        return f"cannot save the checkpoint: {e.strerror or e}"
    text = str(e)
    if isinstance(e, RuntimeError) and any(m in text for m in ("inline_container", "PytorchStreamWriter", "file write failed")):
        return (f"cannot save the checkpoint: writing the file failed, which is what a full disk gives: no space left on "
                f"device? ({_free_space(path)}; PyTorch: {text.strip().splitlines()[0][:200]})")
    return None


def load_problem(path, e):
    """What is wrong with the checkpoint file ``path`` that could not be loaded (None: not one ltspk names)."""
    path = Path(path)
    folder = path.parent.name
    again = f"delete the checkpoint folder {folder} to resume from the one before it, or train again"
    if isinstance(e, FileNotFoundError) or not path.exists():
        return f"checkpoint file not found ({again})"
    size = path.stat().st_size
    text = f"{type(e).__name__}: {e}"
    if size == 0:
        return f"the checkpoint file is empty (0 bytes; a save cut short?): {again}"
    if isinstance(e, pickle.UnpicklingError) or "Weights only load failed" in text:
        return ("the checkpoint file holds pickled Python objects, not only weights: ltspk reads checkpoints with "
                "torch.load(weights_only=True), which refuses them (a pickle can run code). Save the module's "
                "state_dict() instead, or " + again)
    if isinstance(e, EOFError) or any(m in text for m in ("PytorchStreamReader", "central directory", "Ran out of input",
                                                           "invalid load key", "unexpected EOF")):
        return f"the checkpoint file is truncated or not a PyTorch file ({size} bytes): {again}"
    if "Error(s) in loading state_dict" in text:
        detail = " ".join(line.strip() for line in str(e).strip().splitlines()[:3])
        return f"the checkpoint's weights do not fit the model ({detail[:300]})"
    return None


def _naming(hook, problem):
    """``hook(obj, path, ...)`` that turns a failure ``problem(path, e)`` can name into a ``CheckpointError``."""
    def run(obj, path, *rest):
        try:
            return hook(obj, path, *rest)
        except LtspkError:
            raise
        except Exception as e:
            why = problem(path, e)
            if why is None:
                raise
            raise CheckpointError(path, why) from e
    return run


def read_weights(path, map_location="cpu"):
    """``torch.load(path, weights_only=True)``; a ``CheckpointError`` naming the file when it cannot be read."""
    import torch

    return _naming(lambda _, p: torch.load(p, map_location=map_location, weights_only=True), load_problem)(None, path)


class AtomicCheckpointer(Checkpointer):
    def _hooks(self, custom, defaults, problem):
        named = dict(custom)
        for key, obj in self.recoverables.items():
            hook = custom.get(key) or get_default_hook(obj, defaults)
            if hook is not None:
                named[key] = _naming(hook, problem)
        return named

    def _save_checkpoint_metafile(self, fpath, meta_to_include={}, end_of_epoch=True):  # noqa: B006 (SB's signature)
        pending = fpath.with_name(PENDING)
        return _naming(lambda _, p: super(AtomicCheckpointer, self)._save_checkpoint_metafile(p, meta_to_include,
                                                                                              end_of_epoch),
                       save_problem)(None, pending)

    def _call_load_hooks(self, checkpoint):
        custom = self.custom_load_hooks
        self.custom_load_hooks = self._hooks(custom, DEFAULT_LOAD_HOOKS, load_problem)
        try:
            return super()._call_load_hooks(checkpoint)
        finally:
            self.custom_load_hooks = custom

    def save_checkpoint(self, meta={}, end_of_epoch=True, name=None, verbosity=logging.INFO):  # noqa: B006
        custom = self.custom_save_hooks
        self.custom_save_hooks = self._hooks(custom, DEFAULT_SAVE_HOOKS, save_problem)
        try:
            ckpt = super().save_checkpoint(meta=meta, end_of_epoch=end_of_epoch, name=name, verbosity=verbosity)
            if ckpt is not None and if_main_process():
                pending = ckpt.path / PENDING
                with open(pending, "rb") as f:
                    os.fsync(f.fileno())
                os.replace(pending, ckpt.path / METAFNAME)
        except OSError as e:  # the checkpoint folder itself (a read-only output folder), the metafile's rename
            why = save_problem(e.filename or self.checkpoints_dir, e)
            raise CheckpointError(e.filename or self.checkpoints_dir, why) from e
        finally:
            self.custom_save_hooks = custom
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


def describe_checkpoint(ckpt, kind=None):
    """What checkpoint ``ckpt`` of a run holds: its folder name, ``epoch`` (the epoch counter: the
    epoch in progress for a ``mid_epoch`` checkpoint), ``epochs_completed``, ``optimizer_step``,
    ``step_in_epoch`` (mid-epoch only), ``epochs_planned`` and ``extended`` (``ltspk.runtime.fingerprint.RunSettings``;
    None and [] for checkpoints made before it) and, when given, ``kind`` (latest | best | average)."""
    import yaml

    files = ckpt.paramfiles
    epoch = ckpt.meta.get("epoch")
    if "counter" in files:
        epoch = int(str(files["counter"].read_text()).strip())
    try:
        brain = yaml.safe_load(files["brain"].read_text()) if "brain" in files else {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise CheckpointError(files["brain"], f"not a readable checkpoint file ({type(e).__name__}): delete the "
                                              f"checkpoint folder {ckpt.path.name} to use the one before it") from None

    record = read_settings(files["settings"]) if "settings" in files else {}
    mid = not ckpt.meta.get("end-of-epoch", True)
    info = {"checkpoint": ckpt.path.name, "epoch": epoch, "mid_epoch": mid,
            "epochs_completed": None if epoch is None else epoch - 1 if mid else epoch,
            "optimizer_step": (brain or {}).get("optimizer_step"),
            "step_in_epoch": (brain or {}).get("step") if mid else None,
            "epochs_planned": (record.get("settings") or {}).get("number_of_epochs"),
            "extended": record.get("extended") or []}
    if kind is not None:
        info["kind"] = kind
    return info
