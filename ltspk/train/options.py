"""The training options, read from the hparams once, checked before any work, and handed to the
Brain and the Experiment as one typed record (``TrainOptions``).

Older key names are still read: ``augment`` for SpeechBrain's ``wav_augment`` and ``crop_seconds``
for ``sentence_len``; a file that sets both names of one option is refused.
"""

import inspect
from dataclasses import dataclass, field

from ltspk.runtime.checkpoint_policy import CheckpointPolicy
from ltspk.runtime.errors import HparamsError
from ltspk.train import schedulers
from ltspk.train.pretrained import DEFAULTS as FINETUNE_DEFAULTS

VALID_STATS = ("loss", "error", "acc", "acc_many", "acc_medium", "acc_few")  # as valid_<name> in checkpoint meta


def augmenter_of(hparams):
    """The training Augmenter: ``wav_augment`` (SpeechBrain's key) or ``augment`` (older files)."""
    new, old = hparams.get("wav_augment"), hparams.get("augment")
    if new is not None and old is not None:
        raise HparamsError("both wav_augment and augment are set: keep one (wav_augment, SpeechBrain's name)")
    return new if new is not None else old


def crop_seconds(hparams):
    """The training crop: ``sentence_len`` (SpeechBrain's key) or ``crop_seconds`` (older files)."""
    new, old = hparams.get("sentence_len"), hparams.get("crop_seconds")
    if new is not None and old is not None:
        raise HparamsError(f"both sentence_len ({new}) and crop_seconds ({old}) are set: keep sentence_len")
    if new is None and old is None:
        raise HparamsError("no training crop length: set sentence_len (seconds)")
    return float(new if new is not None else old)


@dataclass(frozen=True)
class Finetune:
    """Fine-tuning from a pretrained embedder (``ltspk.train.pretrained``)."""
    source: str
    lr_scale: float


def finetune_options(hparams):
    """``Finetune`` when fine-tuning from a pretrained embedder, else None."""
    source = hparams.get("pretrained_embedder")
    if source in (None, "", False):
        return None
    scale = hparams.get("embedder_lr_scale")
    if scale is None:
        scale = FINETUNE_DEFAULTS["embedder_lr_scale"]
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 <= scale:
        raise HparamsError(f"embedder_lr_scale must be a number >= 0 (the embedder's share of the learning rate), "
                           f"got {scale!r}")
    return Finetune(str(source), float(scale))


def check_epochs(hparams):
    """The epoch counter counts to ``number_of_epochs``: a run folder's hyperparams.yaml written by an
    older ltspk holds resolved values, which a later ``--number_of_epochs`` does not reach."""
    counter, epochs = hparams.get("epoch_counter"), hparams.get("number_of_epochs")
    limit = getattr(counter, "limit", epochs)
    if epochs is not None and limit != epochs:
        raise HparamsError(f"number_of_epochs is {epochs} but epoch_counter counts to {limit}: this hyperparams.yaml "
                           "holds resolved values (a run folder written by an older ltspk), which the command line "
                           f"does not reach; give the configuration's hparams file instead: HPARAMS --output_folder "
                           f"RUN --number_of_epochs {epochs} --extend_epochs (with its data_folder)")


@dataclass(frozen=True)
class TrainOptions:
    """What the Brain and the Experiment read from the hparams, read once."""
    augment: object = None            # an Augmenter (wav_augment), or None
    crop_seconds: float = None        # the training crop (sentence_len)
    checkpoints: CheckpointPolicy = field(default_factory=CheckpointPolicy)
    finetune: Finetune = None         # fine-tuning from a pretrained embedder, or None
    margin_schedule: object = None    # ltspk.heads.aam.MarginScheduler, or None
    lr_schedule: object = None        # lr_annealing
    validating: bool = False          # valid_during_training

    @classmethod
    def from_hparams(cls, hparams, need_crop=True):
        """The options of loaded hparams; ``HparamsError`` before any work for an inconsistent choice of
        validation, checkpoint selection, averaging, schedule, augmentation, fine-tuning or margin."""
        validating = bool(hparams.get("valid_during_training"))
        policy = CheckpointPolicy.from_hparams(hparams)
        key = policy.key
        known = ["loss"] + [f"valid_{k}" for k in VALID_STATS]
        if key is not None:
            if key[1] not in known:
                raise HparamsError(f"ckpt_{key[0]}_key: {key[1]!r} is not a checkpoint figure; choose one of {known}")
            if key[1].startswith("valid_") and not validating:
                raise HparamsError(f"ckpt_{key[0]}_key: {key[1]} needs validation during training: set "
                                   "valid_during_training: True")
        schedule = hparams.get("lr_annealing")
        kind = schedulers.schedule_kind(schedule)
        if kind in (schedulers.VALID_METRIC, schedulers.PLATEAU) and not validating:
            raise HparamsError(f"lr_annealing {type(schedule).__name__} anneals on the validation loss: "
                               "set valid_during_training: True")
        check_epochs(hparams)
        classifier = hparams.get("classifier")
        head = getattr(classifier, "func", classifier)
        margins = hparams.get("margin_schedule")
        if margins is not None and "margin" not in inspect.signature(head).parameters:
            raise HparamsError(f"margin_schedule is set but the head {head.__name__} has no margin (AAMHead has): "
                               "set margin_schedule: null")
        return cls(augment=augmenter_of(hparams), crop_seconds=crop_seconds(hparams) if need_crop else None,
                   checkpoints=policy, finetune=finetune_options(hparams), margin_schedule=margins,
                   lr_schedule=schedule, validating=validating)
