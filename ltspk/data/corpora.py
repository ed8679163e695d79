"""One entry point for every corpus's preparation, used by the recipes."""

from pathlib import Path

CORPORA = ("voxceleb", "cnceleb", "librispeech", "folder", "synthetic")


def prepare_corpus(corpus, data_folder, save_folder, options, **kwargs):
    """Prepare ``corpus`` from ``data_folder`` into ``save_folder``.

    voxceleb: data_folder is the VoxCeleb1 root; kwargs vox2_folder, train_sets, trial_list.
    cnceleb: data_folder is CN-Celeb1 (``CN-Celeb_flac``); kwargs cn2_folder.
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

        return prepare_cnceleb(save_folder, data_folder, kwargs.get("cn2_folder"), options)
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
        return prepare_voxceleb(save_folder, root, None, ["vox1_dev"], "O", options)
    raise ValueError(f"unknown corpus {corpus!r}; choose one of {', '.join(CORPORA)}")
