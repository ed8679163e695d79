"""What a checkpoint was trained as: checked before any weight is loaded from it.

``RunIdentity`` is a SpeechBrain recoverable saved in every checkpoint. It records

- a configuration fingerprint: SHA-256 over the features (the feature modules' structure and
  their settings such as sample rate and mel bands), the embedder (its module structure and
  every parameter and buffer shape), the head (class, hparams arguments such as margin, scale,
  la_tau, and shapes), the number of classes and the loss;
- a SHA-256 of the label encoder's mapping (speaker of every class index).

On recovery either mismatch raises ``CheckpointMismatch`` instead of resuming or evaluating a
model under another configuration or with permuted speaker indices. Checkpoints written before
this existed lack the file and are loaded with a warning (nothing to check).

``RunSettings`` is saved beside it (``settings.ckpt``, JSON): every setting that shapes training
(``training_settings``: seed, the preparation's fingerprint, optimiser, lr keys and schedule, sampler,
training crop, batch, planned epochs, head and its arguments). A run resumes and is evaluated only
with the settings of its latest checkpoint; any difference is refused, each one named. Extending
``number_of_epochs`` is the one change allowed, and only when asked for (``train.py --extend_epochs``):
the checkpoints then record it (``extended``: from and to how many epochs, after which epoch and
optimiser step, and the schedule before and after).
The module structure is ``repr(module)``: a torch version that prints modules otherwise gives
another fingerprint.
"""

import hashlib
import json
import logging

from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks

from ltspk.runtime.atomic import write_json
from ltspk.runtime.errors import DataError
from ltspk.runtime.legacy import modern_paths

log = logging.getLogger(__name__)

FEATURE_SETTINGS = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "f_min", "f_max", "log_mel",
                    "filter_shape", "deltas", "context", "left_frames", "right_frames", "norm_type", "std_norm")


class CheckpointMismatch(DataError):
    """A checkpoint was made under another configuration or label encoder than this run's."""


def _sha(obj):
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()


def _shapes(module):
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def _settings(module):
    out = {}
    for name, sub in module.named_modules():
        found = {k: getattr(sub, k) for k in FEATURE_SETTINGS if isinstance(getattr(sub, k, None), (int, float, str))}
        if found:
            out[name or "."] = found
    return out


def module_signature(module):
    return {"class": f"{type(module).__module__}.{type(module).__qualname__}", "structure": repr(module),
            "shapes": _shapes(module), "settings": _settings(module)}


def head_arguments(head_factory):
    """The class and keyword arguments a ``!name:`` head factory (a functools.partial) carries."""
    func = getattr(head_factory, "func", head_factory)
    args = dict(getattr(head_factory, "keywords", None) or {})
    return f"{func.__module__}.{func.__qualname__}", args


def describe(hparams, modules, head):
    """The configuration as a JSON-able dict (what the fingerprint is taken over)."""
    cls, args = head_arguments(hparams["classifier"])
    loss = hparams.get("loss", "ce")
    return {
        "features": module_signature(modules["compute_features"]),
        "normalizer": module_signature(modules["mean_var_norm"]),
        "embedding_model": module_signature(modules["embedding_model"]),
        "head": {"factory": cls, "args": args, "class": type(head).__qualname__, "shapes": _shapes(head)},
        "n_classes": int(head.n_classes),
        "loss": {"type": loss, **({"focal_gamma": hparams.get("focal_gamma", 2.0)} if loss == "focal" else {})},
    }


def summary(desc, name=None):
    """A one-line reading of a configuration, for messages."""
    head = desc["head"]
    args = ", ".join(f"{k}={v}" for k, v in sorted(head["args"].items()))
    model = desc["embedding_model"]["class"].rsplit(".", 1)[-1]
    text = f"{head['class']}({args}), {model}, {desc['n_classes']} classes, loss {desc['loss']['type']}"
    return f"{name}: {text}" if name else text


def label_encoder_digest(encoder):
    """SHA-256 of the speaker of every class index, in index order."""
    return _sha([encoder.ind2lab[i] for i in range(len(encoder))])


def differences(a, b, labels=None, prefix=""):
    """Dotted keys where two nested dicts differ; with ``labels`` (what a and b are), each
    followed by both values."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differences(va, vb, labels, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}" + (f": {va!r} ({labels[0]}) vs {vb!r} ({labels[1]})" if labels else ""))
    return out


@register_checkpoint_hooks
class RunIdentity:
    """Configuration fingerprint and label-encoder hash of a run, saved in and checked against checkpoints.

    ``desc``: ``describe(...)``; ``name``: the experiment's name, for messages; ``encoder``
    and ``encoder_file``: the label encoder and the file it was read from."""

    def __init__(self, desc, encoder, encoder_file, name=None):
        self.desc, self.name = desc, name
        self.fingerprint = _sha(desc)
        self.labels = label_encoder_digest(encoder)
        self.encoder_file = str(encoder_file)

    @mark_as_saver
    def save(self, path):
        record = {"fingerprint": self.fingerprint, "name": self.name, "config": json.loads(json.dumps(
            self.desc, default=repr)), "label_encoder_sha256": self.labels}
        with open(path, "w", encoding="utf-8") as f:
            json.dump(record, f)

    @mark_as_loader
    def load(self, path, end_of_epoch):
        del end_of_epoch
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        ckpt = path.parent
        if saved["fingerprint"] != self.fingerprint:
            differ = differences(saved.get("config", {}), json.loads(json.dumps(self.desc, default=repr)))
            raise CheckpointMismatch(ckpt, (
                f"checkpoint of another configuration: it was trained as [{summary(saved['config'], saved.get('name'))}] "
                f"(fingerprint {saved['fingerprint'][:12]}), this run is [{summary(self.desc, self.name)}] "
                f"(fingerprint {self.fingerprint[:12]}); they differ in {', '.join(differ[:6]) or 'the fingerprint'}. "
                "Use another output_folder, or the hparams the checkpoint was trained with"))
        if saved["label_encoder_sha256"] != self.labels:
            raise CheckpointMismatch(self.encoder_file, (
                f"label encoder differs from the one checkpoint {ckpt} was trained with (speaker indices permuted "
                "or changed): restore the file the run wrote, or train in another output_folder"))


# ---- the settings that shape training ------------------------------------------------------------

LR_KEYS = ("lr", "lr_final", "base_lr", "max_lr", "step_size", "step_size_epochs")  # recorded when the file has them
EXTENDABLE = ("number_of_epochs", "lr_annealing")  # what --extend_epochs may change (a schedule follows the epochs)


def _plain_value(value):
    """``value`` as JSON: numbers, strings, lists and dicts as they are, tensors as lists, any other
    object as its type (a function or module has no stable value to compare)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain_value(v) for k, v in value.items()}
    if hasattr(value, "tolist") and hasattr(value, "dtype"):
        return value.tolist()
    return f"<{type(value).__module__}.{type(value).__qualname__}>"


def object_settings(obj):
    """Class and settings of an hparams object: a ``!name:`` factory's keyword arguments, or a built
    object's attributes (read before any training or recovery changes them); None when absent."""
    if obj is None:
        return None
    if hasattr(obj, "func") and hasattr(obj, "keywords"):
        cls, args = head_arguments(obj)
        return {"class": cls, "args": _plain_value(args)}
    attrs = {k: v for k, v in sorted(getattr(obj, "__dict__", {}).items()) if not k.startswith("_")}
    return {"class": f"{type(obj).__module__}.{type(obj).__qualname__}", "settings": _plain_value(attrs)}


def training_settings(hparams, crop_seconds):
    """Every setting that shapes training, as a JSON-able dict (the preparation's fingerprint is
    added once the data are prepared: ``RunSettings.settings["preparation"]``)."""
    loader = dict(hparams.get("train_dataloader_options") or {})
    return _plain_value({
        "seed": hparams.get("seed"),
        "number_of_epochs": hparams.get("number_of_epochs"),
        **{k: hparams[k] for k in LR_KEYS if k in hparams},
        "optimizer": object_settings(hparams.get("opt_class")),
        "lr_annealing": object_settings(hparams.get("lr_annealing")),
        "sampler": hparams.get("sampler") or None,
        "crop_seconds": crop_seconds,
        "batch_size": loader.get("batch_size"),
        "drop_last": bool(loader.get("drop_last", False)),
        "shuffle": bool(loader.get("shuffle", False)),
        "head": object_settings(hparams.get("classifier")),
        # shape training where set (None otherwise, as in records made before they were listed)
        "margin_schedule": object_settings(hparams.get("margin_schedule")),
        "augment": object_settings(hparams.get("augment")),
        "embedder_lr_scale": hparams.get("embedder_lr_scale") if hparams.get("pretrained_embedder") else None,
    })


def _short(value, width=60):
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _changes(a, b, prefix=""):
    """Each difference of two nested dicts, as ``key: old (checkpoint) vs new (this run)``."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _changes(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {_short(va)} (checkpoint) vs {_short(vb)} (this run)")
    return out


def read_settings(path):
    """A ``settings.ckpt`` record: ``{"settings": {...}, "extended": [...]}``."""
    try:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})") from None
    if not isinstance(saved, dict) or not isinstance(saved.get("settings"), dict):
        raise DataError(path, "not an ltspk settings record (no 'settings')")
    return modern_paths(saved)  # class paths of records written before ltspk's packages by role


@register_checkpoint_hooks
class RunSettings:
    """The settings that shape a run's training (``training_settings``), saved in every checkpoint and
    checked (``check``) against the latest before the run resumes or is evaluated.

    ``extend_epochs``: a larger ``number_of_epochs`` (and the schedule that follows it) is accepted
    and recorded in ``extended``, which every later checkpoint carries."""

    def __init__(self, settings, extend_epochs=False):
        self.settings = settings
        self.extend_epochs = bool(extend_epochs)
        self.extended = []
        self.loaded = None  # the record of the checkpoint last loaded

    @mark_as_saver
    def save(self, path):

        write_json(path, {"settings": self.settings, "extended": self.extended})

    @mark_as_loader
    def load(self, path, end_of_epoch):
        del end_of_epoch  # the check is made against the latest checkpoint, before anything is loaded
        self.loaded = read_settings(path)

    def check(self, ckpt, where, skip=()):
        """Refuse (``CheckpointMismatch``, every difference named) to go on from checkpoint ``ckpt`` with
        other settings than it was trained with, but for a recorded extension of ``number_of_epochs``;
        ``where``: ``ltspk.runtime.checkpoints.describe_checkpoint(ckpt)``; ``skip``: keys not compared (yet)."""
        path = ckpt.paramfiles.get("settings")
        if path is None:
            log.warning("%s records no training settings (made by an older ltspk): they are not checked", ckpt.path)
            return
        saved = read_settings(path)
        if "head" in skip and saved["settings"].get("head") != self.settings.get("head"):
            return  # another head: RunIdentity's check names it (with the configuration) once the model is built
        before = {k: v for k, v in saved["settings"].items() if k not in skip}
        now = {k: v for k, v in self.settings.items() if k not in skip}
        differ = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
        epochs = before.get("number_of_epochs"), now.get("number_of_epochs")
        longer = "number_of_epochs" in differ and None not in epochs and epochs[1] > epochs[0]
        extension = None
        if self.extend_epochs and longer and (before.get("lr_annealing") or {}).get("class") == (
                now.get("lr_annealing") or {}).get("class"):
            differ = [k for k in differ if k not in EXTENDABLE]
            extension = {"number_of_epochs": list(epochs), "after_epoch": where.get("epochs_completed"),
                         "optimizer_step": where.get("optimizer_step"), "mid_epoch": where.get("mid_epoch"),
                         "checkpoint": where.get("checkpoint")}
            if before.get("lr_annealing") != now.get("lr_annealing"):
                extension["lr_annealing"] = {"before": before.get("lr_annealing"), "after": now.get("lr_annealing")}
        if differ:
            hint = (" To train this run for more epochs, add --extend_epochs to train.py (the extension is recorded "
                    "in its checkpoints)." if longer and not self.extend_epochs else "")
            if longer and self.extend_epochs and "number_of_epochs" not in differ:
                hint = " --extend_epochs extends number_of_epochs (and its schedule) only: the other settings must stay."
            changes = _changes({k: before.get(k) for k in differ}, {k: now.get(k) for k in differ})
            raise CheckpointMismatch(ckpt.path, (
                "trained with other settings than this run's: " + "; ".join(changes) + ". A run resumes and is "
                "evaluated only with the settings it was trained with: use those, or start a new run in another "
                "output_folder." + hint))
        self.extended = list(saved.get("extended") or []) + ([extension] if extension else [])
        if extension and not skip:
            log.warning("number_of_epochs extended from %d to %d after epoch %s (--extend_epochs): recorded in the "
                        "run's checkpoints", *epochs, extension["after_epoch"])
