"""Loading an hparams file so that a typo is an error, not a silent default.

``load_hparams(file, overrides)`` loads with hyperpyyaml and then refuses

- a command-line override of a key the file does not have (``--samplr class``), naming the
  nearest known key;
- a top-level key in the file that ltspk does not read and that no ``!ref <key>`` of the file
  uses (``samplr: class`` in the YAML), naming the nearest known key;
- a key inside a nested option that nothing reads (``train_dataloader_options: {batch_szie: 8}``,
  ``crt_options: {min_step: 5}``), naming the nearest option of that key (``NESTED_OPTIONS``);
- numbers that cannot work (epochs, batch sizes <= 0, a learning rate <= 0, a final learning rate < 0),

before any work starts, with ``HparamsError`` naming the file. On the command line ``none`` (any case)
means null, as ``null`` does, for every key that may be null (``nullable_keys``:
``--imbalance_factor none``).

A file may start from other files (``ltspk.train.layering``).
"""

import difflib
import re
from pathlib import Path

from ltspk.data.corpora import CORPUS_KEYS, PREP_KEYS
from ltspk.data.prepare import PrepOptions
from ltspk.data.samplers import SAMPLERS
from ltspk.data.synthetic import make_corpus
from ltspk.heads.methods import hparams_keys, nested_options, registered
from ltspk.runtime.errors import HparamsError, LtspkError
from ltspk.runtime.rng import kept_rng_state
from ltspk.train.layering import blocks, compose, hparams_text

# every top-level key ltspk or SpeechBrain's Brain reads, besides the preparation and corpus keys
# (ltspk.data.corpora) and the long-tail methods' keys (their registry, ``method_keys``); tests check
# the shipped files against them
LTSPK_KEYS = frozenset("""
asnorm_cohort_utts asnorm_top_k augment augment_folder base_lr batch_size channels ckpt_average_last
ckpt_interval_minutes ckpt_max_key ckpt_min_key classifier compute_cost compute_features corpus
corpus_options crop_seconds data_folder drop_chunk drop_freq emb_dim embedder_lr_scale embedding_model
enrol_protocol epoch_counter eval_batch_size eval_max_seconds evaluate_after_training experiment focal_gamma loss lr
lr_annealing lr_final margin_schedule max_lr mean_var_norm n_mels noise_folder num_workers
number_of_epochs opt_class output_folder p_targets prep_options prepared_folder pretrained_embedder
rir_folder sample_rate sampler save_folder score_norm seed sentence_len speed_perturb step_size step_size_epochs
tensorboard train_dataloader_options train_log train_logger
valid_dataloader_options valid_during_training wav_augment
""".split())


def _callable_options(target, skip):
    def options():
        import inspect

        fn = target()
        return {n for n, p in inspect.signature(fn).parameters.items()
                if n not in skip and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return options


def _loader_options():
    from torch.utils.data import DataLoader

    # DataLoader's arguments, and what SpeechBrain's Brain.make_dataloader / make_dataloader take besides
    return _callable_options(lambda: DataLoader.__init__, {"self", "dataset"})() | {"ckpt_prefix", "looped_nominal_epoch"}


def _prep_options():
    from dataclasses import fields

    return {f.name for f in fields(PrepOptions)}


# nested options (top-level key -> the names it may hold, found from what reads them): a key inside
# them that nothing reads would otherwise fail deep in a run, or silently do nothing; the long-tail
# methods' options (crt_options, ...) come from their registry (``method_keys``)
NESTED_OPTIONS = {
    "train_dataloader_options": _loader_options,
    "valid_dataloader_options": _loader_options,
    "prep_options": _prep_options,
}
# keys that may be null besides those whose value in the file is null (``--key none`` means null)
NULLABLE_KEYS = frozenset("""
augment ckpt_average_last ckpt_max_key ckpt_min_key eval_max_seconds imbalance_factor margin_schedule noise_folder
pretrained_embedder rir_folder sampler score_norm shot_quantiles trial_list train_sets vox2_folder cn2_folder
concat_min_seconds session_pattern verification_speakers trials valid_dataloader_options wav_augment
""".split())


def nullable_keys(text):
    """Top-level keys that may be null: ``NULLABLE_KEYS`` and those the YAML ``text`` sets to null."""
    from ruamel.yaml.nodes import ScalarNode

    null = {key for key, _, node in blocks(text) if key is not None and isinstance(node, ScalarNode)
            and node.tag == "tag:yaml.org,2002:null"}
    return NULLABLE_KEYS | null


def none_as_null(overrides, nullable):
    """Command-line overrides with a value ``none`` (any case) turned into null for the keys of
    ``nullable``; YAML reads ``null`` / ``~`` as null already, ``none`` as a string."""
    if isinstance(overrides, dict):
        return {k: None if k in nullable and isinstance(v, str) and v.strip().lower() == "none" else v
                for k, v in overrides.items()}
    if not overrides:
        return overrides

    def swap(m):
        return f"{m.group(1)}: null" if m.group(1) in nullable else m.group(0)

    return re.sub(r"^([A-Za-z_][A-Za-z0-9_]*):[ \t]*none[ \t]*$", swap, overrides, flags=re.M | re.I)


METHOD_PACKAGES = ("ltspk.heads", "ltspk.longtail")  # where long-tail methods are declared


def method_keys():
    """The long-tail methods' hparams keys (``ltspk.heads.methods``) and {options key: its options}."""

    methods = registered(*METHOD_PACKAGES)
    return hparams_keys(methods), nested_options(methods)


def known_keys():
    """ltspk's keys, the preparation and corpus keys (``ltspk.data.corpora``) and SpeechBrain's run
    options (which a YAML may set too)."""
    from speechbrain.core import RunOptions

    corpus_keys = {k for keys in CORPUS_KEYS.values() for k in keys}
    return LTSPK_KEYS | method_keys()[0] | set(PREP_KEYS) | corpus_keys | set(RunOptions().as_dict())


def nearest(key, candidates):
    match = difflib.get_close_matches(key, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def referenced_keys(text):
    """Keys a YAML text uses through ``!ref <key>`` / ``<key[...]>``."""
    return set(re.findall(r"<([A-Za-z_][A-Za-z0-9_]*)", text))


def load_hparams(hparams_file, overrides=None):
    """The loaded hparams dict; ``HparamsError`` for unknown keys or impossible numbers."""
    import io

    from hyperpyyaml import load_hyperpyyaml

    path = Path(hparams_file)
    text = hparams_text(path, overrides or "")
    compose(text, path)  # a YAML error is an HparamsError naming the file, not a parser traceback
    overrides = none_as_null(overrides, nullable_keys(text))
    check_numbers(path, _override_values(overrides))  # --lr abc: named as such, before any object is built
    stream = io.StringIO(text)
    stream.name = str(path)  # hyperpyyaml resolves !include: paths against it
    try:
        hparams = load_hyperpyyaml(stream, overrides)
    except KeyError as e:
        m = re.match(r"Override '([^']+)' not found in: \[(.*)\]", str(e.args[0]) if e.args else "")
        if not m:
            raise
        key, have = m.group(1), re.findall(r"'([^']+)'", m.group(2))
        raise HparamsError(f"{path}: the command line sets {key!r}, which this file does not have"
                           f"{nearest(key, have)}") from None
    except LtspkError:
        raise
    except ImportError as e:  # a !new: / !name: naming what cannot be imported
        raise HparamsError(f"{path}: names a class or function that cannot be imported ({e}); is its package "
                           "installed and its name spelt right?") from None
    except Exception as e:
        if type(e).__name__ != "DuplicateKeyError":  # ruamel's, for a key given twice (``--seed 1 --seed 2``)
            if isinstance(e, (TypeError, ValueError)):
                given = (f" (command line: {', '.join(overrides.strip().splitlines())})"
                         if isinstance(overrides, str) and overrides.strip() else "")
                raise HparamsError(f"{path}: cannot build the objects this file describes{given}: {e}") from e
            raise
        m = re.search(r'found duplicate key "([^"]+)"', str(e))
        raise HparamsError(f"{path}: {m.group(1) if m else 'a key'} is given twice (in the file or on the command "
                           "line): give each key once") from None
    check_keys(path, hparams, text)
    check_nested(path, hparams)
    check_numbers(path, hparams)
    check_method_values(path, hparams)
    check_head(path, hparams)  # before any folder is made
    return hparams


def _override_values(overrides):
    """The command-line overrides as a dict of plain values (SpeechBrain passes them as YAML text);
    {} when they are not plain YAML (tags: hyperpyyaml reads them)."""
    if isinstance(overrides, dict):
        return overrides
    if not overrides:
        return {}
    from ruamel.yaml import YAML

    try:
        values = YAML(typ="safe").load(overrides)
    except Exception:  # noqa: BLE001 (tagged or odd YAML: hyperpyyaml reads it and says what is wrong)
        return {}
    return values if isinstance(values, dict) else {}


POSITIVE_OPTIONS = {"epochs", "lr", "batch_size"}  # a long-tail method's options that must be > 0


def check_method_values(path, hparams):
    """The long-tail methods' values (``ltspk.heads.methods``): a grid is a list of numbers, an options
    key a mapping of numbers (epochs, lr and batch size > 0, the others >= 0); anything else would fail
    deep in evaluation or stage 2, or be taken apart letter by letter."""
    from ltspk.heads.methods import registered

    for method in registered(*METHOD_PACKAGES):
        if method.kind == "enrolment":
            continue
        if method.tunable is not None and method.tunable.hparam in hparams:
            key, grid = method.tunable.hparam, hparams[method.tunable.hparam]
            if grid is not None and (not isinstance(grid, (list, tuple)) or
                                     any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in grid)):
                raise HparamsError(f"{path}: {key} must be a list of numbers (the grid chosen on validation; [] for "
                                   f"none), got {grid!r}")
        if method.options_key and hparams.get(method.options_key) is not None:
            key, options = method.options_key, hparams[method.options_key]
            if not isinstance(options, dict):
                raise HparamsError(f"{path}: {key} must be a mapping of options, e.g. {{epochs: 10}}, got {options!r}")
            for name, value in options.items():
                low = "> 0" if name in POSITIVE_OPTIONS else ">= 0"
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or \
                        (name in POSITIVE_OPTIONS and value == 0):
                    raise HparamsError(f"{path}: {key}.{name} must be a number {low}, got {value!r}")


def check_head(path, hparams):
    """Build the configured head once on two classes, before any work: a head argument it refuses
    (``--aam_margin abc``, ``--causal_num_heads 0``) is an ``HparamsError`` naming it, not a traceback
    after the data are prepared."""
    classifier, emb_dim = hparams.get("classifier"), hparams.get("emb_dim")
    if classifier is None or emb_dim is None or not callable(classifier):
        return
    try:
        with kept_rng_state():  # its weights' draws must not shift the run's (the seed is set as the file loads)
            classifier(in_dim=emb_dim, n_classes=2)
    except (TypeError, ValueError, ZeroDivisionError) as e:
        name = getattr(getattr(classifier, "func", classifier), "__name__", "the head")
        raise HparamsError(f"{path}: classifier: {name} refuses its arguments: {e}") from None


def allowed_keys(text):
    """The top-level keys a YAML text may hold: what ltspk reads, and what its own ``!ref`` use."""
    return known_keys() | referenced_keys(text)


def check_keys(path, hparams, text):
    allowed = allowed_keys(text)
    for key in hparams:
        if key.startswith("__") or key in allowed:
            continue
        raise HparamsError(f"{path}: unknown key {key!r}{nearest(key, known_keys())} (ltspk does not read it, so "
                           "it would silently have no effect)")


def check_nested(path, hparams):
    """Refuse a key inside a nested option (``NESTED_OPTIONS``) that nothing reads, naming the nearest."""
    corpus_options = hparams.get("corpus_options")
    nested = {**NESTED_OPTIONS, **method_keys()[1]}
    if isinstance(corpus_options, dict) and corpus_options:
        nested["corpus_options"] = lambda: _corpus_options(hparams.get("corpus"))
    for name, options in nested.items():
        value = hparams.get(name)
        if not isinstance(value, dict) or not value:
            continue
        allowed = options()
        for key in value:
            if key not in allowed:
                listed = f" (it takes {', '.join(sorted(allowed))})" if len(allowed) <= 12 else ""
                raise HparamsError(f"{path}: {name} has no option {key!r}{nearest(str(key), allowed)}{listed}; "
                                   "it would fail at its use, or silently have no effect")


def _corpus_options(corpus):

    keys = set(CORPUS_KEYS.get(corpus, ()))
    if corpus == "synthetic":

        keys |= _callable_options(lambda: make_corpus, {"out_dir"})()
    return keys


def check_numbers(path, hparams):
    def positive(name, value):
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0):
            raise HparamsError(f"{path}: {name} must be a positive number, got {value!r}")

    def at_least_zero(name, value):
        if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
            raise HparamsError(f"{path}: {name} must be a number >= 0, got {value!r}")

    for key in ("number_of_epochs", "lr"):
        if key in hparams and hparams[key] is None:
            raise HparamsError(f"{path}: {key} must be a positive number, got null")
    positive("number_of_epochs", hparams.get("number_of_epochs"))
    positive("eval_batch_size", hparams.get("eval_batch_size"))
    positive("lr", hparams.get("lr"))  # a negative one climbs the loss; the optimiser's error names no key
    positive("max_lr", hparams.get("max_lr"))
    at_least_zero("lr_final", hparams.get("lr_final"))  # 0: anneal to zero; below 0 trains uphill at the end
    at_least_zero("base_lr", hparams.get("base_lr"))
    loader = hparams.get("train_dataloader_options") or {}
    if isinstance(loader, dict):
        positive("train_dataloader_options.batch_size", loader.get("batch_size"))
    positive("crop_seconds", hparams.get("crop_seconds"))
    positive("sentence_len", hparams.get("sentence_len"))

    sampler = hparams.get("sampler")
    if sampler is not None and sampler not in SAMPLERS:
        raise HparamsError(f"{path}: sampler {sampler!r} is not one of null, {', '.join(SAMPLERS)}"
                           f"{nearest(str(sampler), SAMPLERS)}")


