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
The module structure is ``repr(module)``: a torch version that prints modules otherwise gives
another fingerprint.
"""

import hashlib
import json

from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks

from ltspk.errors import DataError

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
