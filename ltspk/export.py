"""Export a trained run as a SpeechBrain model folder, and write embedding tables.

The folder loads with ``speechbrain.inference.speaker.EncoderClassifier.from_hparams(source=DIR)``
and holds ``hyperparams.yaml`` (modules compute_features, mean_var_norm, embedding_model,
classifier; label_encoder; pretrainer), ``embedding_model.ckpt``, ``classifier.ckpt`` and the
label encoder (``label_encoder.txt``, and the same file as ``label_encoder.ckpt`` for the
pretrainer, which finds ``<name>.ckpt`` in the folder so the folder can be moved). ltspk's
recipes score raw embeddings, so no ``mean_var_norm_emb`` is exported: call
``encode_batch(wavs, normalize=False)`` (the default).
"""

import io
import shutil
from pathlib import Path

import torch
from hyperpyyaml import resolve_references
from ruamel.yaml import YAML
from ruamel.yaml.tag import Tag

from ltspk.atomic import atomic_open, atomic_path, write_text
from ltspk.brain import unwrap
from ltspk.errors import DataError

MODULES = ("compute_features", "mean_var_norm", "embedding_model", "classifier")


def _save_state(module, path):
    with atomic_path(path) as tmp:
        torch.save(unwrap(module).state_dict(), tmp)


def export_yaml(training_yaml_text, n_classes, overrides=None):
    """hyperparams.yaml for EncoderClassifier from a training YAML (text) and its overrides."""
    resolved = resolve_references(training_yaml_text, overrides or {}).getvalue()
    y = YAML()  # round-trip: keeps the !new: tags
    doc = y.load(resolved)
    missing = [k for k in MODULES if k not in doc]
    if missing:
        raise DataError("hyperparams", f"training YAML lacks {missing}")
    cls = doc["classifier"]
    tag = getattr(getattr(cls, "tag", None), "value", None) or ""
    if not tag.startswith(("!name:", "!new:")):
        raise DataError("hyperparams", f"classifier must be a !name: or !new: head, got tag {tag!r}")
    cls.yaml_set_ctag(Tag(suffix="!new:" + tag.split(":", 1)[1]))  # built, not a partial
    cls["in_dim"] = doc["emb_dim"]
    cls["n_classes"] = int(n_classes)
    out = {k: doc[k] for k in MODULES}
    buf = io.StringIO()
    y.dump(out, buf)
    text = buf.getvalue()
    text += "\nmodules:\n" + "".join(f"    {k}: !ref <{k}>\n" for k in MODULES)
    text += "\nlabel_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder\n"
    text += "\npretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n    loadables:\n"
    text += "".join(f"        {k}: !ref <{k}>\n" for k in ("embedding_model", "classifier", "label_encoder"))
    header = ("# SpeechBrain model folder exported by ltspk. Load with\n"
              "# EncoderClassifier.from_hparams(source=<this folder>); the classifier needs ltspk installed.\n")
    return header + text


def export_model_folder(exp, dest, training_yaml_text, overrides=None):
    """Write the model folder of a trained (recovered) experiment to ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    brain = exp.brain
    write_text(dest / "hyperparams.yaml", export_yaml(training_yaml_text, len(exp.class_counts), overrides))
    _save_state(brain.modules.embedding_model, dest / "embedding_model.ckpt")
    _save_state(brain.modules.classifier, dest / "classifier.ckpt")
    le = Path(exp.hparams["save_folder"]) / "label_encoder.txt"
    for name in ("label_encoder.txt", "label_encoder.ckpt"):
        with atomic_open(dest / name, "wb") as f, open(le, "rb") as src:
            shutil.copyfileobj(src, f)
    return dest


def write_kaldi(ark_path, ids, matrix):
    """Kaldi ark/scp through kaldiio (``pip install ltspk[kaldi]``)."""
    try:
        import kaldiio
    except ImportError:
        raise DataError(ark_path, "Kaldi output needs kaldiio: pip install kaldiio (or ltspk[kaldi])") from None
    ark_path = Path(ark_path)
    scp_path = ark_path.with_suffix(".scp")
    with atomic_path(ark_path) as tmp_ark, atomic_path(scp_path) as tmp_scp:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{tmp_scp}") as w:
            for i, u in enumerate(ids):
                w(u.replace(" ", "_"), matrix[i])
        # the scp names the temporary ark: point it at the final name
        text = Path(tmp_scp).read_text().replace(str(tmp_ark), str(ark_path))
        Path(tmp_scp).write_text(text)
    return ark_path, scp_path
