"""Fine-tuning from a pretrained embedder: a run's embedding model initialised from a SpeechBrain
model folder or an ltspk run, trained with a lower learning rate than the head.

Two hparams keys, off unless ``pretrained_embedder`` is set (a configuration without them trains
exactly as before: same random draws, same results):

- ``pretrained_embedder``: a folder, read when training starts from scratch (a resumed run loads
  its own checkpoint and never the pretrained weights again):

  - a SpeechBrain model folder (``hyperparams.yaml`` + ``embedding_model.ckpt``: the layout of
    ``spkrec-ecapa-voxceleb``; ``recipes/extract.py --export_model`` writes one from an ltspk
    run), read from the folder (never a hub);
  - an ltspk run folder (``hyperparams.yaml`` + ``save/``): the embedding model of the checkpoint
    its evaluation uses (``ltspk.embedding.embedders.run_checkpoints``: the best by ``ckpt_min_key`` /
    ``ckpt_max_key``, the mean of the last ``ckpt_average_last`` epochs, or the latest);
  - ``speechbrain:DIR`` / ``run:DIR`` to say which (``ltspk.embedding.embedders.source_kind``, as
    identification reads its sources).

  The weights are read once (SpeechBrain's key patching, ``torch.load`` with ``weights_only``):
  the check before the data are prepared returns what it read, and the load when training starts
  takes it (``Experiment`` holds it in between), loading it as SpeechBrain's ``Pretrainer``
  transfers a module (``load_state_dict``; every name and shape was checked).

  Only ``embedding_model`` is transferred: the features and their normalisation are the run's own
  (a different ``n_mels`` shows as a shape difference of the first layer). Every parameter and
  buffer of the pretrained embedding model must have the configured model's name and shape;
  otherwise ``PretrainedMismatch`` names the folder and the parameters that differ, before any
  training.
- ``embedder_lr_scale`` (default 0.1): the embedding model's learning rate as a fraction of the
  rest's (head, features). The optimiser holds the embedding model's parameters in their own
  parameter group(s) with ``lr_scale``; ``ltspk.train.brain`` re-applies the scale after every
  learning-rate update (per step, per epoch, on plateau), since SpeechBrain's schedulers set every
  group to one value. 0 freezes the embedder's weights (its BatchNorm statistics still adapt).

A command-line ``--pretrained_embedder DIR`` works with any hparams file: ``with_finetune_keys``
adds the keys a file lacks, at their defaults, when an override names them.
"""

import re
from pathlib import Path

from ltspk.embedding.embedders import missing_model_files, run_checkpoints, source_kind
from ltspk.runtime.averaging import mean_state_dicts
from ltspk.runtime.errors import DataError

DEFAULTS = {"pretrained_embedder": None, "embedder_lr_scale": 0.1}
EMBEDDER_GROUP = "embedding_model"  # the ``ltspk_group`` of the embedder's parameter groups


class PretrainedMismatch(DataError):
    """A pretrained embedding model that does not fit the configured one."""


def with_finetune_keys(yaml_text, overrides):
    """``yaml_text`` with ``pretrained_embedder`` and ``embedder_lr_scale`` appended at their defaults
    where the file lacks them and the overrides set either (hyperpyyaml refuses an override of a key
    the file does not have; both are then in the run's saved hyperparams.yaml). Unchanged otherwise."""
    if not overrides:
        return yaml_text
    keys = set(overrides) if isinstance(overrides, dict) else set(re.findall(r"^([A-Za-z_]\w*)\s*:", overrides, re.M))
    if not keys & set(DEFAULTS):
        return yaml_text
    missing = [k for k in DEFAULTS if not re.search(rf"^{k}\s*:", yaml_text, re.M)]
    if not missing:
        return yaml_text
    lines = "".join(f"{k}: {'null' if DEFAULTS[k] is None else DEFAULTS[k]}\n" for k in missing)
    return yaml_text.rstrip("\n") + "\n\n# fine-tuning from a pretrained embedder (ltspk.train.pretrained)\n" + lines


# ---- the pretrained weights ------------------------------------------------------------------------


def _declared_embedder(yaml_path):
    """The ``embedding_model`` a hyperparams.yaml declares, as one line (for messages), or ''.
    Read without building anything."""
    try:
        from hyperpyyaml import resolve_references
        from ruamel.yaml import YAML

        doc = YAML().load(resolve_references(Path(yaml_path).read_text(encoding="utf-8"), {}).getvalue())
        node = doc["embedding_model"]
        tag = getattr(getattr(node, "tag", None), "value", None) or ""
        args = ", ".join(f"{k}={list(v) if isinstance(v, list) else v}" for k, v in node.items())
        return f"{tag.split(':', 1)[-1].rsplit('.', 1)[-1]}({args})"
    except Exception:  # noqa: BLE001 (only a hint for a message)
        return ""


def check_compatible(model, state, where, declared=""):
    """Refuse (``PretrainedMismatch``) a state dict whose names or shapes differ from ``model``'s."""
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in state.items()}
    shape = [k for k in mine if k in theirs and mine[k] != theirs[k]]
    missing = [k for k in mine if k not in theirs]
    extra = [k for k in theirs if k not in mine]
    if not (shape or missing or extra):
        return
    parts = [f"{k}: {list(theirs[k])} there, {list(mine[k])} here" for k in shape[:4]]
    if len(shape) > 4:
        parts.append(f"and {len(shape) - 4} more shapes")
    if missing:
        parts.append(f"missing there: {', '.join(missing[:4])}" + (f" (+{len(missing) - 4})" if len(missing) > 4 else ""))
    if extra:
        parts.append(f"not in this model: {', '.join(extra[:4])}" + (f" (+{len(extra) - 4})" if len(extra) > 4 else ""))
    hint = f"; the folder declares embedding_model {declared}" if declared else ""
    raise PretrainedMismatch(where, (
        f"pretrained_embedder: its embedding model does not fit this run's {type(model).__name__} "
        f"({'; '.join(parts)}){hint}. Set embedding_model (channels, lin_neurons / emb_dim, input_size / "
        "n_mels, ...) as the pretrained model was trained"))


def _load_state(path):
    from speechbrain.utils.checkpoints import torch_patched_state_dict_load

    try:
        return torch_patched_state_dict_load(path, "cpu")  # SpeechBrain's key patching, weights_only torch.load
    except Exception as e:  # noqa: BLE001 (a corrupt or foreign file: name it)
        raise DataError(path, f"cannot read the pretrained embedding model ({type(e).__name__}: {e})") from None


def check_pretrained_embedder(model, source):
    """Refuse, before any work, a ``source`` that is not a pretrained embedder or whose embedding
    model does not fit ``model`` (``PretrainedMismatch``, naming the folder and the parameters).
    Returns ``(state dict, what it is in words)``: pass it to ``load_pretrained_embedder`` so that
    the weights are read once."""

    kind, path = source_kind(source)
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise DataError(path, "pretrained_embedder: folder not found (a SpeechBrain model folder or an ltspk run "
                              "folder on disk; nothing is fetched from a model hub)")
    if kind == "run":
        ckpts, how = run_checkpoints(path)
        files = [c.path / "embedding_model.ckpt" for c in ckpts]
        for f in files:
            if not f.is_file():
                raise DataError(f.parent, "pretrained_embedder: this checkpoint holds no embedding_model.ckpt")
        what = f"the embedding model of ltspk run {path} ({how})"
    else:
        lacking = missing_model_files(path)
        if lacking:
            raise DataError(path, f"pretrained_embedder: not a SpeechBrain model folder or an ltspk run: missing "
                                  f"{', '.join(lacking)} (a model folder holds hyperparams.yaml and "
                                  "embedding_model.ckpt, as spkrec-ecapa-voxceleb; a run folder holds hyperparams.yaml "
                                  "and save/)")
        files = [path / "embedding_model.ckpt"]
        what = f"the embedding model of SpeechBrain model folder {path}"

    state = mean_state_dicts(_load_state(f) for f in files) if len(files) > 1 else _load_state(files[0])
    check_compatible(model, state, path, _declared_embedder(path / "hyperparams.yaml"))
    return state, what


def load_pretrained_embedder(model, source, checked=None):
    """Load the pretrained embedding model of ``source`` (see the module doc) into ``model`` (the
    configured, unwrapped embedding model): ``checked``, what ``check_pretrained_embedder`` returned
    for them, or read and checked now. Returns what was loaded, in words."""
    state, what = checked if checked is not None else check_pretrained_embedder(model, source)
    model.load_state_dict(state)  # SpeechBrain's torch_parameter_transfer, on the state already read
    return what


# ---- parameter groups --------------------------------------------------------------------------------


def param_groups(modules, embedder, scale, split_vectors=False):
    """Optimiser parameter groups: first the parameters of every module but ``embedder`` (lr scale
    1, so that group 0 carries the schedule's learning rate, which SpeechBrain's schedulers and the
    heads read), then the embedder's (``lr_scale`` = ``scale``). ``split_vectors``: SpeechBrain's
    ``remove_vector_weight_decay`` (vectors without weight decay) within each."""
    emb = {id(p) for p in embedder.parameters()}
    if split_vectors:
        from speechbrain.utils.optimizers import rm_vector_weight_decay

        base = rm_vector_weight_decay(modules)
    else:
        base = [{"params": list(modules.parameters())}]
    rest, mine = [], []
    for g in base:
        params = list(g["params"])
        extra = {k: v for k, v in g.items() if k != "params"}
        rest.append({**extra, "params": [p for p in params if id(p) not in emb], "lr_scale": 1.0, "ltspk_group": "rest"})
        mine.append({**extra, "params": [p for p in params if id(p) in emb], "lr_scale": float(scale),
                     "ltspk_group": EMBEDDER_GROUP})
    groups = [g for g in rest + mine if g["params"]]
    if not groups or groups[0]["ltspk_group"] != "rest":
        raise ValueError("fine-tuning needs parameters outside the embedding model (the head's) to carry the schedule")
    return groups


def set_lr_scale(optimizer, scale):
    """Set the embedder groups' ``lr_scale`` (after a checkpoint restored the groups)."""
    for g in optimizer.param_groups:
        if g.get("ltspk_group") == EMBEDDER_GROUP:
            g["lr_scale"] = float(scale)


def apply_lr_scales(optimizer):
    """Every group's lr = the schedule's lr (group 0's) x its ``lr_scale``. Returns the embedder's lr."""
    groups = optimizer.param_groups
    base = groups[0]["lr"] / groups[0].get("lr_scale", 1.0)
    out = base
    for g in groups:
        if "lr_scale" in g:
            g["lr"] = base * g["lr_scale"]
            if g.get("ltspk_group") == EMBEDDER_GROUP:
                out = g["lr"]
    return out
