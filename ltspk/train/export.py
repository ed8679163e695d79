"""Export a trained run as a SpeechBrain model folder, and write embedding tables.

The folder loads with ``speechbrain.inference.speaker.EncoderClassifier.from_hparams(source=DIR)``
and holds ``hyperparams.yaml`` (modules compute_features, mean_var_norm, embedding_model,
classifier; label_encoder; pretrainer), ``embedding_model.ckpt``, ``classifier.ckpt`` and the
label encoder (``label_encoder.txt``, and the same file as ``label_encoder.ckpt`` for the
pretrainer, which finds ``<name>.ckpt`` in the folder so the folder can be moved). ltspk's
recipes score raw embeddings, so no ``mean_var_norm_emb`` is exported: call
``encode_batch(wavs, normalize=False)`` (the default).

``classify_batch`` gives the speaker-ID inference the run chose on its validation split
(``chosen_inference``: of the head's stage-1 families, plain, post-hoc logit adjustment, and TDE
for CausalNorm, the setting with the best ``spkid_valid`` accuracy, ties to plain): the head is
wrapped in ``DeployedHead``, whose forward applies that family and setting. Where the run holds no
evaluation records it is plain inference, and the folder says so. Stage-2 classifiers (cRT,
tau-norm, LWS, NCM) are not exported. The head's arguments that only training reads (``margin``,
``la_tau``, CausalNorm's ``mu`` and ``alpha``: TDE's alpha is the chosen one) are left out of the
exported YAML. ``README.md`` in the folder states all this; the scores ``classify_batch`` returns
are logits, not log posteriors (SpeechBrain's docstring calls them so).
"""

import io
import shutil
from pathlib import Path

import torch
from hyperpyyaml import resolve_references
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.tag import Tag
from torch import nn

from ltspk.embedding.embedders import unwrap
from ltspk.evaluation.records import read_stage
from ltspk.runtime.atomic import atomic_open, atomic_path, write_text
from ltspk.runtime.errors import DataError

MODULES = ("compute_features", "mean_var_norm", "embedding_model", "classifier")
TRAINING_ONLY = ("margin", "la_tau", "mu", "alpha")  # head arguments no inference reads


class DeployedHead(nn.Module):
    """A head whose forward (no labels) gives one inference: ``head.inference_logits(x, family, **params)``."""

    def __init__(self, head, family="plain", params=None):
        super().__init__()
        self.head, self.family, self.params = head, str(family), dict(params or {})

    def forward(self, x, labels=None):
        return self.head.inference_logits(x, self.family, **self.params)


def chosen_inference(run_dir, head):
    """``{"family", "params", "valid_accuracy"}``: of ``head``'s stage-1 inference families, the one
    setting with the best accuracy on the run's validation split (``<run>/evaluation/records.json``),
    ties going to plain inference (a family's neutral setting); None where the run has no such records."""

    doc = read_stage(run_dir, "evaluate")
    if doc is None:
        return None
    families = list(head.inference_families().items())
    best = None
    for r in doc["records"]:
        tunable = dict(families).get(r.family)
        if r.role != "validation" or r.task != "speaker_id" or tunable is None or r.metrics.get("overall") is None:
            continue
        value = r.params.get(tunable.param)
        plain = value is None or float(value) == float(tunable.neutral)
        rank = (r.metrics["overall"], plain, -[f for f, _ in families].index(r.family))
        if best is None or rank > best[0]:
            choice = {"family": "plain", "params": {}} if plain else {"family": r.family, "params": {tunable.param: value}}
            best = (rank, {**choice, "valid_accuracy": r.metrics["overall"], "split": r.split})
    return None if best is None else best[1]


def inference_note(inference):
    """What the exported ``classify_batch`` computes, in words."""
    if inference is None:
        return ("classify_batch gives the head's PLAIN logits: the run holds no validation records to choose "
                "an inference from (evaluate it first to export the chosen one).")
    setting = ", ".join(f"{k} {v:g}" for k, v in inference["params"].items())
    what = inference["family"] + (f" ({setting})" if setting else "")
    return (f"classify_batch gives the logits of the inference chosen on {inference['split']}: {what}, "
            f"validation accuracy {inference['valid_accuracy']:.2f}%. Stage-2 classifiers (cRT, tau-norm, LWS, NCM) "
            "are not exported. The scores are logits (not log posteriors).")


def _save_state(module, path):
    with atomic_path(path) as tmp:
        torch.save(unwrap(module).state_dict(), tmp)


def export_yaml(training_yaml_text, n_classes, overrides=None, inference=None):
    """hyperparams.yaml for EncoderClassifier from a training YAML (text) and its overrides; its
    classifier applies ``inference`` (``chosen_inference``; None: plain) and holds no argument that
    only training reads (``TRAINING_ONLY``)."""
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
    for key in TRAINING_ONLY:
        cls.pop(key, None)
    deployed = CommentedMap()
    deployed.yaml_set_ctag(Tag(suffix="!new:ltspk.train.export.DeployedHead"))
    deployed["head"] = cls
    deployed["family"] = inference["family"] if inference else "plain"
    deployed["params"] = CommentedMap(inference["params"] if inference else {})
    deployed["params"].fa.set_flow_style()
    doc["classifier"] = deployed
    out = {k: doc[k] for k in MODULES}
    buf = io.StringIO()
    y.dump(out, buf)
    text = buf.getvalue()
    text += "\nmodules:\n" + "".join(f"    {k}: !ref <{k}>\n" for k in MODULES)
    text += "\nlabel_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder\n"
    text += "\npretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n    loadables:\n"
    text += "".join(f"        {k}: !ref <{k}>\n" for k in ("embedding_model", "classifier", "label_encoder"))
    header = ("# SpeechBrain model folder exported by ltspk. Load with\n"
              "# EncoderClassifier.from_hparams(source=<this folder>); the classifier needs ltspk installed.\n"
              f"# {inference_note(inference)}\n")
    return header + text


def export_model_folder(exp, dest, training_yaml_text, overrides=None):
    """Write the model folder of a trained (recovered) experiment to ``dest``."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    brain = exp.brain
    head = unwrap(brain.modules.classifier)
    inference = chosen_inference(exp.hparams["output_folder"], head)
    write_text(dest / "hyperparams.yaml", export_yaml(training_yaml_text, len(exp.class_counts), overrides, inference))
    write_text(dest / "README.md", "# SpeechBrain model folder exported by ltspk\n\n"
               "Load with `EncoderClassifier.from_hparams(source=<this folder>)` (the classifier needs ltspk "
               f"installed). `encode_batch` gives the run's embeddings. {inference_note(inference)}\n")
    _save_state(brain.modules.embedding_model, dest / "embedding_model.ckpt")
    _save_state(DeployedHead(head, **({k: inference[k] for k in ("family", "params")} if inference else {})),
                dest / "classifier.ckpt")
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
