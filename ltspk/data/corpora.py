"""One entry point for every corpus's preparation, used by the recipes."""

from dataclasses import fields
from pathlib import Path

from ltspk.data.prepare import PrepOptions
from ltspk.runtime.errors import HparamsError

CORPORA = ("voxceleb", "cnceleb", "librispeech", "folder", "synthetic")

# each corpus's own options: top-level hparams keys of the same name (``corpus_options`` in older files)
CORPUS_KEYS = {
    "voxceleb": ("vox2_folder", "train_sets", "trial_list"),
    "cnceleb": ("cn2_folder", "concat_min_seconds"),
    "librispeech": ("train_subsets", "trial_subsets", "n_trials"),
    "folder": ("session_pattern", "verification_speakers", "trials", "n_trials"),
    "synthetic": (),  # the generator's parameters stay in ``corpus_options`` (ltspk.data.synthetic.make_corpus)
}


def prepare_corpus(corpus, data_folder, save_folder, options, **kwargs):
    """Prepare ``corpus`` from ``data_folder`` into ``save_folder``.

    voxceleb: data_folder is the VoxCeleb1 root; kwargs vox2_folder, train_sets, trial_list.
    cnceleb: data_folder is CN-Celeb1 (``CN-Celeb_flac``); kwargs cn2_folder, concat_min_seconds.
    librispeech: kwargs train_subsets, trial_subsets, n_trials.
    folder: one folder per speaker; kwargs session_pattern, verification_speakers, trials, n_trials.
    synthetic: the synthetic corpus is written to data_folder first if it is not there;
    kwargs go to ``ltspk.data.synthetic.make_corpus``.
    """
    if corpus == "voxceleb":
        from ltspk.data.voxceleb import prepare_voxceleb

        return prepare_voxceleb(save_folder, data_folder, kwargs.get("vox2_folder"), kwargs.get("train_sets"),
                                kwargs.get("trial_list", "O"), options)
    if corpus == "cnceleb":
        from ltspk.data.cnceleb import prepare_cnceleb

        return prepare_cnceleb(save_folder, data_folder, kwargs.get("cn2_folder"), options,
                               concat_min_seconds=kwargs.get("concat_min_seconds"))
    if corpus == "librispeech":
        from ltspk.data.librispeech import prepare_librispeech

        return prepare_librispeech(save_folder, data_folder, **kwargs, options=options)
    if corpus == "folder":
        from ltspk.data.folder import prepare_folder

        return prepare_folder(save_folder, data_folder, options, **kwargs)
    if corpus == "synthetic":
        from ltspk.data.synthetic import make_corpus
        from ltspk.data.voxceleb import prepare_voxceleb

        root = Path(data_folder) / "voxceleb1"
        if not (root / "veri_test2.txt").is_file():
            root = make_corpus(data_folder, **{"seed": 0, **kwargs})  # the corpus is data: the same for every run seed
        return prepare_voxceleb(save_folder, root, None, ["vox1_dev"], "O", options, corpus="synthetic")
    raise HparamsError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")


# top-level hparams keys of the shared preparation options: PrepOptions's fields, by name, but for the
# two whose plain name would say too little at the top level of an hparams file
PREP_KEYS = {{"workers": "prep_workers", "progress": "prep_progress"}.get(f.name, f.name): f.name
             for f in fields(PrepOptions)}
# corpus keys whose null means the corpus's own default: left out of the preparation's fingerprint
# (ltspk.data.prepared), so that a null key and an absent one are the same preparation
NULL_IS_DEFAULT = {"vox2_folder", "cn2_folder", "concat_min_seconds", "session_pattern", "verification_speakers",
                   "trials"}


def options_from_hparams(hparams):
    """``(corpus, data_folder, prepared_folder, PrepOptions, corpus_options)`` of loaded hparams.

    The options are top-level keys (``holdout_per_speaker: 3``, ``trial_list: O``), so that one
    command-line override changes one value. Files (and run folders) written before that hold
    them nested in ``prep_options`` (a ``PrepOptions`` or a mapping) and ``corpus_options``; those
    are read too, and a value set both ways is an error.
    """

    corpus = hparams.get("corpus")
    if corpus not in CORPORA:
        raise HparamsError(f"corpus: {corpus!r} is not a corpus ltspk prepares; choose one of {', '.join(CORPORA)}")
    nested = hparams.get("prep_options")
    if nested is not None:
        both = sorted(k for k in PREP_KEYS if k != "seed" and k in hparams)
        if both:
            raise HparamsError(f"prep_options and the top-level key(s) {', '.join(both)} both set preparation "
                               "options: keep the top-level keys")
        options = nested if isinstance(nested, PrepOptions) else PrepOptions(**dict(nested))
    else:
        options = PrepOptions(**{field: hparams[key] for key, field in PREP_KEYS.items() if key in hparams})
    own = set(CORPUS_KEYS[corpus])
    for other, keys in CORPUS_KEYS.items():
        stray = sorted(k for k in set(keys) - own if hparams.get(k) is not None)
        if stray:
            raise HparamsError(f"{', '.join(stray)}: a {other} key, which the {corpus} corpus does not read (it would "
                               "silently have no effect)")
    corpus_options = dict(hparams.get("corpus_options") or {})
    for key in CORPUS_KEYS[corpus]:
        if key not in hparams or (hparams[key] is None and key in corpus_options):
            continue  # an older file's top-level null beside its nested value: the nested value is the one used
        if key in corpus_options and corpus_options[key] != hparams[key]:
            raise HparamsError(f"{key} is {hparams[key]!r} but corpus_options.{key} is {corpus_options[key]!r}: "
                               "keep the top-level key")
        corpus_options[key] = hparams[key]
    return corpus, hparams.get("data_folder"), hparams["prepared_folder"], options, corpus_options
