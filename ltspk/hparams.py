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

A file may start from other files (``hparams_text``): ``base: [base/voxceleb.yaml, heads/tde.yaml]``
merges those files top-level key by top-level key, in order, and then the file's own keys over
them, before hyperpyyaml reads the whole; a key set again replaces the earlier block whole (a
head's ``classifier`` replaces the base's, with none of its arguments). Bases may have bases.
The run folder's ``hyperparams.yaml`` holds the merged whole.
"""

import argparse
import difflib
import re
from pathlib import Path

from ltspk.errors import LtspkError


class HparamsError(LtspkError, ValueError):
    """An hparams file or override that ltspk cannot use, or hyperparameters that cannot work
    together; refused before any work."""


# every top-level key ltspk or SpeechBrain's Brain reads, besides the preparation and corpus keys
# (ltspk.data.corpora); tests check the shipped files against them
LTSPK_KEYS = frozenset("""
asnorm_cohort_utts asnorm_top_k augment augment_folder base_lr batch_size channels ckpt_average_last
ckpt_interval_minutes ckpt_max_key ckpt_min_key classifier compute_cost compute_features corpus
corpus_options crop_seconds crt_options data_folder drop_chunk drop_freq emb_dim embedder_lr_scale embedding_model
enrol_protocol epoch_counter eval_batch_size eval_max_seconds evaluate_after_training experiment focal_gamma loss lr
lr_annealing lr_final lws_options margin_schedule max_lr mean_var_norm n_mels noise_folder num_workers
number_of_epochs opt_class output_folder p_targets posthoc_la_taus prep_options prepared_folder pretrained_embedder
rir_folder sample_rate sampler save_folder score_norm seed sentence_len speed_perturb step_size step_size_epochs
tau_norm_powers tde_alphas tde_embedding_alphas tensorboard train_dataloader_options train_log train_logger
valid_dataloader_options valid_during_training wav_augment
""".split())


def hparam(hparams, key, default=None):
    """``hparams[key]`` (or ``default``) of loaded hparams, whether a dict or the Brain's namespace."""
    if isinstance(hparams, dict):
        return hparams.get(key, default)
    return getattr(hparams, key, default)


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

    from ltspk.data.prepare import PrepOptions

    return {f.name for f in fields(PrepOptions)}


def _decoupled(name, skip):
    def target():
        import ltspk.decoupled

        return getattr(ltspk.decoupled, name)
    return _callable_options(target, skip)


# nested options (top-level key -> the names it may hold, found from what reads them): a key inside
# them that nothing reads would otherwise fail deep in a run, or silently do nothing
NESTED_OPTIONS = {
    "train_dataloader_options": _loader_options,
    "valid_dataloader_options": _loader_options,
    "crt_options": _decoupled("crt", {"x", "y", "n_classes"}),
    "lws_options": _decoupled("lws", {"frozen_logits", "y"}),
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

    null = {key for key, _, node in _blocks(text) if key is not None and isinstance(node, ScalarNode)
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


def known_keys():
    """ltspk's keys, the preparation and corpus keys (``ltspk.data.corpora``) and SpeechBrain's run
    options (which a YAML may set too)."""
    from speechbrain.core import RunOptions

    from ltspk.data.corpora import CORPUS_KEYS, PREP_KEYS

    corpus_keys = {k for keys in CORPUS_KEYS.values() for k in keys}
    return LTSPK_KEYS | set(PREP_KEYS) | corpus_keys | set(RunOptions().as_dict())


def nearest(key, candidates):
    match = difflib.get_close_matches(key, sorted(candidates), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def referenced_keys(text):
    """Keys a YAML text uses through ``!ref <key>`` / ``<key[...]>``."""
    return set(re.findall(r"<([A-Za-z_][A-Za-z0-9_]*)", text))


def _compose(text, where):
    """The YAML node tree of ``text`` (tags kept, nothing built); ``HparamsError`` naming ``where``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        root = YAML().compose(text)
    except YAMLError as e:
        raise HparamsError(f"{where}: not valid YAML: {e}") from None
    from ruamel.yaml.nodes import MappingNode

    if root is not None and not isinstance(root, MappingNode):
        raise HparamsError(f"{where}: an hparams file is a mapping of keys to values")
    return root


def _blocks(text, where="hparams"):
    """``text`` as ``(key, block, value_node)`` triples, in order: a top-level key's block runs from its
    line through the last line of its value (found by the YAML parser, so blank lines inside a value,
    block scalars and column-0 ``- item`` lists stay in it), plus the column-0 comment lines right
    after it; what lies between blocks (blank lines, section comments) is a block of key ``None``."""
    lines = text.splitlines(keepends=True)
    root = _compose(text, where)
    spans = []
    for key_node, value_node in (root.value if root is not None else []):
        start, end = key_node.start_mark.line, value_node.end_mark.line
        last = end if value_node.end_mark.column > 0 else end - 1
        last = min(max(last, start), len(lines) - 1)
        while last > start and (not lines[last].strip() or lines[last].startswith("#")):
            last -= 1  # a block value's end mark lies past the blank lines and comments that follow it
        spans.append((str(key_node.value), start, last, value_node))
    out, pos = [], 0
    for n, (key, start, last, node) in enumerate(spans):
        if start > pos:
            out.append((None, "".join(lines[pos:start]), None))
        stop = spans[n + 1][1] if n + 1 < len(spans) else len(lines)
        last += 1
        while last < stop and lines[last].startswith("#"):
            last += 1  # comment lines right after a value belong to it
        out.append((key, "".join(lines[start:last]), node))
        pos = last
    if pos < len(lines):
        out.append((None, "".join(lines[pos:]), None))
    return out


def merge_text(base, own, where="hparams"):
    """``base`` YAML text with the top-level blocks of ``own`` put over it: a key of both keeps the
    base's place and takes ``own``'s block; ``own``'s other keys (and the comments between them)
    follow at the end; ``own``'s leading comments come first."""
    mine = _blocks(own, where)
    lead = []
    while mine and mine[0][0] is None:
        lead.append(mine.pop(0)[1])
    replace = {k: b for k, b, _ in mine if k is not None}
    placed, body = set(), []
    for key, block, _ in _blocks(base, where):
        if key in replace:
            block = replace[key]
            placed.add(key)
        body.append(block if block.endswith("\n") else block + "\n")
    rest = [b for k, b, _ in mine if k not in placed]
    return "".join(lead) + "".join(body) + ("\n" + "".join(rest) if rest else "")


def _base_names(node, path):
    """The file names of a ``base:`` value: one name or a list of names."""
    from ruamel.yaml.nodes import ScalarNode, SequenceNode

    items = node.value if isinstance(node, SequenceNode) else [node]
    if not items or not all(isinstance(n, ScalarNode) and str(n.value).strip() for n in items):
        raise HparamsError(f"{path}: base: expects a file name or a list of file names, e.g. "
                           "base: [base/voxceleb.yaml, heads/tde.yaml]")
    return [str(n.value).strip() for n in items]


def hparams_text(hparams_file, overrides=None, _seen=()):
    """The YAML text hyperpyyaml reads for ``hparams_file``: its ``base:`` files merged under it
    (``merge_text``), and the fine-tuning keys added when the overrides set them
    (``ltspk.pretrained.with_finetune_keys``)."""
    path = Path(hparams_file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise HparamsError(f"{path}: cannot read the hparams file ({e.strerror or e})") from None
    blocks = _blocks(text, path)
    base_nodes = [node for key, _, node in blocks if key == "base"]
    if base_nodes:
        own = "".join(block for key, block, _ in blocks if key != "base")
        merged = ""
        for name in _base_names(base_nodes[0], path):
            base = (path.parent / name).resolve()
            if base in _seen or base == path.resolve():
                raise HparamsError(f"{path}: base {name} includes itself (through {' -> '.join(map(str, _seen))})")
            if not base.is_file():
                raise HparamsError(f"{path}: base {name} not found (looked for {base})")
            part = hparams_text(base, None, (*_seen, path.resolve()))
            merged = merge_text(merged, part, base) if merged else part
        text = merge_text(merged, own, path)
    if overrides is None:
        return text
    from ltspk.pretrained import with_finetune_keys

    return with_finetune_keys(text, overrides)  # --pretrained_embedder on any file


def load_hparams(hparams_file, overrides=None):
    """The loaded hparams dict; ``HparamsError`` for unknown keys or impossible numbers."""
    import io

    from hyperpyyaml import load_hyperpyyaml

    path = Path(hparams_file)
    text = hparams_text(path, overrides or "")
    _compose(text, path)  # a YAML error is an HparamsError naming the file, not a parser traceback
    overrides = none_as_null(overrides, nullable_keys(text))
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
    return hparams


def check_keys(path, hparams, text):
    allowed = known_keys() | referenced_keys(text)
    for key in hparams:
        if key.startswith("__") or key in allowed:
            continue
        raise HparamsError(f"{path}: unknown key {key!r}{nearest(key, known_keys())} (ltspk does not read it, so "
                           "it would silently have no effect)")


def check_nested(path, hparams):
    """Refuse a key inside a nested option (``NESTED_OPTIONS``) that nothing reads, naming the nearest."""
    corpus_options = hparams.get("corpus_options")
    nested = dict(NESTED_OPTIONS)
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
    from ltspk.data.corpora import CORPUS_KEYS

    keys = set(CORPUS_KEYS.get(corpus, ()))
    if corpus == "synthetic":
        from ltspk.data.synthetic import make_corpus

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
    from ltspk.data.samplers import SAMPLERS

    sampler = hparams.get("sampler")
    if sampler is not None and sampler not in SAMPLERS:
        raise HparamsError(f"{path}: sampler {sampler!r} is not one of null, {', '.join(SAMPLERS)}"
                           f"{nearest(str(sampler), SAMPLERS)}")


def relocatable_text(text, output_folder):
    """``text`` (a resolved hparams YAML) with every path inside ``output_folder`` written as
    ``!ref <output_folder>/...``: a run folder's ``hyperparams.yaml`` names its own files relative to
    it, so that the folder may be copied or moved (``run_folder_argument`` sets ``output_folder`` to
    where it is). The ``output_folder`` line keeps its value; paths outside the run stay as they are."""
    forms = sorted({str(output_folder).rstrip("/") or "/", str(Path(output_folder).resolve())}, key=len, reverse=True)
    patterns = [re.compile(r"(?<=[\s\[{,])(['\"]?)" + re.escape(f) + r"(?=[/'\"\s,\]}]|$)") for f in forms]
    out = []
    for line in text.splitlines(keepends=True):
        if not re.match(r"output_folder\s*:", line):
            for pattern in patterns:
                line = pattern.sub(r"!ref \1<output_folder>", line)
        out.append(line)
    return "".join(out)


EXTERNAL_PATH_KEYS = ("data_folder", "vox2_folder", "cn2_folder", "trials", "noise_folder", "rir_folder",
                      "pretrained_embedder")


def absolute_external_paths(text, keys=EXTERNAL_PATH_KEYS, base=None):
    """``text`` (a resolved hparams YAML) with each top-level ``key: relative/path`` of ``keys`` made
    absolute against ``base`` (the working directory): a run folder evaluated from elsewhere still
    finds its corpus. Nulls, absolute paths and values with YAML tags are left as they are."""
    base = Path(base or Path.cwd())
    out = []
    for line in text.splitlines(keepends=True):
        m = re.match(r"^(\w+)(\s*:\s*)(['\"]?)([^'\"#\s!][^'\"#]*?)\3(\s*(?:#.*)?)$", line.rstrip("\n"))
        if m and m.group(1) in keys and m.group(4) not in ("null", "None", "~") and not Path(m.group(4)).is_absolute():
            value = str((base / m.group(4)).resolve())
            line = f"{m.group(1)}{m.group(2)}{m.group(3)}{value}{m.group(3)}{m.group(5)}" + ("\n" if line.endswith("\n") else "")
        out.append(line)
    return "".join(out)


def run_folder_argument(argv):
    """``argv`` with a leading run folder replaced by the ``hyperparams.yaml`` training saved
    there (overrides applied, references resolved) and ``--output_folder`` set to that folder
    (unless given): a trained run is re-used with no corpus paths, where it is, even copied or
    moved (its files are named relative to it: ``relocatable_text``)."""
    argv = list(argv)
    if argv and Path(argv[0]).is_dir():
        folder = Path(argv[0])
        saved = folder / "hyperparams.yaml"
        if not saved.is_file():
            raise HparamsError(f"{argv[0]}: a folder was given, but it holds no hyperparams.yaml (not a training run?)")
        argv[0] = str(saved)
        if not any(a == "--output_folder" or a.startswith("--output_folder=") for a in argv[1:]):
            _refuse_absolute_paths_elsewhere(saved, folder)
            argv += ["--output_folder", str(folder.resolve())]
    return argv


def _refuse_absolute_paths_elsewhere(saved, folder):
    """A ``hyperparams.yaml`` written before run folders were relocatable names the run's files by
    absolute paths: read from another folder than the one it names, it would write there."""
    text = saved.read_text(encoding="utf-8")
    m = re.search(r"^output_folder\s*:\s*(['\"]?)(.*?)\1\s*(?:#.*)?$", text, re.M)
    if not m or not m.group(2) or Path(m.group(2)).resolve() == folder.resolve():
        return
    if relocatable_text(text, m.group(2)) != text:
        raise HparamsError(f"{saved}: names its files by absolute paths inside {m.group(2)} (written by an older "
                           f"ltspk), but the run folder is {folder}: it was copied or moved there (or is read from "
                           "another working directory), and reading it would write to the other folder. Use its "
                           f"hparams file instead: HPARAMS --output_folder {folder} (with its data_folder and other "
                           "overrides), or move it back")


MAIN_KEYS = {
    "data_folder": "corpus root (VoxCeleb1 root, CN-Celeb root, LibriSpeech root, or one folder per speaker)",
    "output_folder": "run folder: checkpoints, results.json / results.md, evaluation/, stage2/",
    "prepared_folder": "manifests and counts (default <output_folder>/prepared; share one between runs)",
    "seed": "drives the split, the sub-sampling, the initialisation, the crops and the shuffle order",
    "holdout_per_speaker": "speaker-ID test utterances held out per training speaker",
    "valid_per_speaker": "speaker-ID validation utterances per training speaker (every tuned setting is chosen there)",
    "imbalance_factor": "long-tail sub-sampling to this max/min ratio (null: the corpus's own counts)",
    "shot_many_above": "shot groups: many > this, few < shot_few_below (or shot_quantiles: [low, high])",
    "train_sets": "voxceleb: [vox2_dev] | [vox1_dev] | both; trial_list: O | H | E",
    "concat_min_seconds": "cnceleb: concatenate a speaker's short clips of one genre to this length (null: off)",
    "session_pattern": "folder: regex naming a file's session; verification_speakers, trials, n_trials",
    "classifier": "the head: AAMHead, CausalNormHead, CosineHead, SoftmaxHead, with la_tau for the LA loss",
    "sampler": "null (shuffle) | instance | class | sqrt | progressive",
    "loss": "ce | focal",
    "number_of_epochs": "training epochs",
    "train_dataloader_options": "batch_size, num_workers, ...",
    "posthoc_la_taus": "post-hoc logit-adjustment grid, chosen on spkid_valid",
    "tde_alphas": "TDE grid (CausalNorm), chosen on spkid_valid",
    "eval_batch_size": "batch size of embedding extraction (1: independent of batching)",
    "score_norm": "null | asnorm (adaptive s-norm)",
    "precision": "fp32 | bf16 | fp16 (SpeechBrain run option)",
}


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse help for the recipes with options of their own (prepare.py, extract.py): the
    description keeps its layout and every option's help ends with its default (or says nothing
    more for a required option)."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if not action.option_strings or action.required or d is argparse.SUPPRESS or "%(default)" in text:
            return text
        if isinstance(d, (list, tuple)):
            return f"{text} (default: {' '.join(map(str, d))})"
        return f"{text} (default: %(default)s)"


def help_requested(argv, doc):
    """Print a recipe's description and its main hparams keys when -h/--help is asked, then
    SpeechBrain's run options; return whether it was asked (the recipe then exits)."""
    if not ({"-h", "--help"} & set(argv)):
        return False
    print(doc.strip(), "\nMain hparams keys (any key of the YAML can be overridden: --key VALUE):\n")
    for key, text in MAIN_KEYS.items():
        print(f"  --{key:<26} {text}")
    print("\nSpeechBrain run options (--device, --precision, --noprogressbar, --distributed_launch, ...):")
    try:
        _speechbrain_run_options().from_command_line_args(["--help"])
    except SystemExit:
        pass
    return True


def _speechbrain_run_options():
    """SpeechBrain's ``RunOptions`` (what ``sb.parse_arguments`` parses with), read from its module
    alone: importing the ``speechbrain`` package imports torch, seconds that ``--help`` need not wait."""
    import importlib.util
    import sys

    name = "speechbrain.utils.run_opts"
    if name in sys.modules:
        return sys.modules[name].RunOptions
    package = importlib.util.find_spec("speechbrain")
    spec = importlib.util.spec_from_file_location("_ltspk_sb_run_opts", Path(package.origin).parent / "utils" / "run_opts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RunOptions
