"""Which checkpoints a run keeps and which its evaluation uses, read once from the hparams.

- ``ckpt_min_key`` / ``ckpt_max_key``: the best checkpoint by a figure of its meta (SpeechBrain's
  ``save_and_keep_only(min_keys=...)``) is kept and evaluated;
- ``ckpt_average_last: N`` > 1: the last N epochs' checkpoints are kept and their mean evaluated
  (WeSpeaker's model averaging, ``ltspk.runtime.averaging``);
- neither: the two most recent are kept and the latest evaluated.

Evaluation, identification (``ltspk.embedding.embedders.run_checkpoints``) and fine-tuning read a
run's model through the same ``CheckpointPolicy.evaluation_checkpoints``.
"""

import logging
from dataclasses import dataclass

from ltspk.runtime.errors import HparamsError

log = logging.getLogger(__name__)


def epoch_checkpoints(checkpointer):
    """End-of-epoch checkpoints (those whose meta holds the epoch), the latest epoch first."""
    found = [c for c in checkpointer.list_checkpoints() if "epoch" in c.meta]
    return sorted(found, key=lambda c: (c.meta["epoch"], c.meta.get("unixtime", 0)), reverse=True)


@dataclass(frozen=True)
class CheckpointPolicy:
    average_last: int = 0  # ckpt_average_last
    key: tuple = None      # ("min" | "max", meta key) of ckpt_min_key / ckpt_max_key, or None

    @classmethod
    def from_hparams(cls, hparams):
        """The policy of loaded hparams (a dict or a YAML document); ``HparamsError``
        for both keys set or a negative average."""
        low, high = hparams.get("ckpt_min_key"), hparams.get("ckpt_max_key")
        if low and high:
            raise HparamsError(f"ckpt_min_key ({low}) and ckpt_max_key ({high}) are both set: keep one")
        n_avg = hparams.get("ckpt_average_last") or 0
        if isinstance(n_avg, bool) or not isinstance(n_avg, int) or n_avg < 0:
            raise HparamsError(f"ckpt_average_last must be a whole number >= 0 (epochs to average), got {n_avg!r}")
        return cls(int(n_avg), ("min", low) if low else ("max", high) if high else None)

    @property
    def selects(self):
        """Whether evaluation uses another model than the latest checkpoint (best or averaged)."""
        return self.key is not None or self.average_last > 1

    def save(self, checkpointer, meta):
        """Save the end-of-epoch checkpoint and delete the ones no longer needed: without a selection
        key or averaging, all but the 2 most recent; with a key, all but the best by it and the most
        recent (SpeechBrain's ``save_and_keep_only``); with averaging, also the last N epochs'."""
        key, n_avg = self.key, self.average_last
        if key is None and n_avg <= 1:
            return checkpointer.save_and_keep_only(meta=meta, num_to_keep=2)
        by = {"min_keys": [key[1]]} if key and key[0] == "min" else {"max_keys": [key[1]]} if key else {}
        if n_avg <= 1:
            return checkpointer.save_and_keep_only(meta=meta, num_to_keep=1, **by)
        checkpointer.save_checkpoint(meta=meta)
        keep = {c.path for c in epoch_checkpoints(checkpointer)[:n_avg]}
        if key:
            best = checkpointer.find_checkpoint(**{f"{key[0]}_key": key[1]})
            if best is not None:
                keep.add(best.path)
        checkpointer.delete_checkpoints(num_to_keep=0, ckpt_predicate=lambda c: c.path not in keep)

    def evaluation_checkpoints(self, checkpointer):
        """The checkpoint(s) a run's evaluation takes its model from: ``("average", the last
        ckpt_average_last epoch checkpoints)`` when that is > 1, else ``("best", [the best by the
        key])``, else ``("latest", [the latest])`` (``[]`` when there is none), with what they are in
        words."""
        n_avg, key = self.average_last, self.key
        if n_avg > 1:
            found = epoch_checkpoints(checkpointer)[:n_avg]
            if found:
                if len(found) < n_avg:
                    log.warning("ckpt_average_last is %d but only %d epoch checkpoint(s) are kept: averaging those",
                                n_avg, len(found))
                epochs = [c.meta["epoch"] for c in found]
                return "average", found, f"mean of the last {len(found)} epoch checkpoints (epochs {epochs})"
        if key is not None:
            best = checkpointer.find_checkpoint(**{f"{key[0]}_key": key[1]})
            if best is not None:
                return "best", [best], (f"best checkpoint by {'lowest' if key[0] == 'min' else 'highest'} {key[1]} "
                                        f"({best.path.name}, epoch {best.meta.get('epoch')}, {key[1]} "
                                        f"{best.meta.get(key[1])})")
            log.warning("no checkpoint holds %s: the latest is used", key[1])
        latest = checkpointer.find_checkpoint()
        return "latest", [latest] if latest is not None else [], f"latest checkpoint ({latest.path.name if latest else '-'})"
