#!/usr/bin/env python3
"""Prepare manifests from a corpus on disk (or write and prepare the synthetic demo corpus).

  python recipes/prepare.py voxceleb    --data_folder VOX1 [--vox2_folder DIR] --prepared_folder DIR
                                        [--train_sets vox1_dev vox2_dev] [--trial_list O|H|E|FILE|none]
  python recipes/prepare.py cnceleb     --data_folder CN1 [--cn2_folder DIR] --prepared_folder DIR
                                        [--concat_min_seconds 5]
  python recipes/prepare.py librispeech --data_folder DIR --prepared_folder DIR [--train_subsets ...]
  python recipes/prepare.py folder      --data_folder DIR --prepared_folder DIR [--session_pattern RE]
                                        [--verification_speakers N|FRACTION | --trials FILE]
  python recipes/prepare.py synthetic   --prepared_folder DIR [--data_folder DIR] [--n_train_speakers N]

or exactly as training prepares it, from an hparams file and its overrides (the file is loaded as
training loads it, so its objects are built too):

  python recipes/prepare.py HPARAMS.yaml [--data_folder DIR] [--prepared_folder DIR] [--any_key VALUE ...]

As training does, a folder already prepared with the same corpus, data folder and options is reused,
and one prepared otherwise is refused with the settings that differ (delete it to prepare again).

Every option is named as its hparams key (--holdout_per_speaker 3, --imbalance_factor 20, ...);
the older spellings (--save, --holdout, --many-above, ...) still work. Every corpus keeps each
speaker's natural utterance count; `prepare.py CORPUS --help` lists a corpus's options.
"""

import argparse
import inspect
import logging
import sys
from pathlib import Path

from ltspk.cli.argtypes import count_or_auto, number_or_auto, number_or_none, parse_args
from ltspk.cli.entry import run
from ltspk.cli.help import DefaultsHelpFormatter
from ltspk.data.longtail import HOLDOUT_BY
from ltspk.data.prepare import PrepOptions
from ltspk.runtime.errors import LtspkError


def add_options(p):
    """The preparation options every corpus shares: PrepOptions' fields, named as the hparams keys."""
    g = p.add_argument_group("preparation options (shared by every corpus; the hparams keys of the same names)")
    g.add_argument("--prepared_folder", "--save", required=True, metavar="DIR",
                   help="output folder for the manifests, counts and plot (required)")
    g.add_argument("--min_utterances", "--min-utterances", type=int, default=1, metavar="N",
                   help="drop speakers with fewer utterances")
    g.add_argument("--imbalance_factor", "--imbalance-factor", type=number_or_none, metavar="X",
                   help="long-tail sub-sampling to this max/min count ratio (reached up to rounding, never above); "
                        "none: the natural counts")
    g.add_argument("--holdout_per_speaker", "--holdout", type=count_or_auto, default="auto", metavar="N|auto",
                   help="speaker-ID test utterances per training speaker (a balanced test); auto: a tenth of a small "
                        "speaker's recordings (the 10th percentile of the counts), at least 1")
    g.add_argument("--valid_per_speaker", "--valid", type=count_or_auto, default="auto", metavar="N|auto",
                   help="speaker-ID validation utterances per training speaker, where every tuned setting is "
                        "chosen (0: none, and tuning is refused); auto: a twentieth of a small speaker's, at least 1")
    g.add_argument("--holdout_by", choices=HOLDOUT_BY, default="session",
                   help="session: a speaker's test and validation recordings are whole sessions (video, chapter, "
                        "call, word) that its training never saw, where it has two or more; utterance: random recordings")
    g.add_argument("--shot_many_above", "--many-above", type=number_or_auto, default="auto", metavar="N|auto",
                   help="shot group 'many': speakers with more training utterances than this; auto: the upper "
                        "tertile of the training counts")
    g.add_argument("--shot_few_below", "--few-below", type=number_or_auto, default="auto", metavar="N|auto",
                   help="shot group 'few': speakers with fewer training utterances than this; auto: the lower tertile")
    g.add_argument("--shot_quantiles", "--quantiles", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="shot groups at these quantiles of the counts instead (e.g. 0.33 0.67); "
                        "None: the fixed thresholds")
    g.add_argument("--seed", type=int, default=0, metavar="N", help="drives the speaker-ID split and the sub-sampling")
    g.add_argument("--prep_workers", "--workers", type=int, default=8, metavar="N", help="threads probing audio headers")
    g.add_argument("--verify_samples", "--verify-samples", action="store_true",
                   help="read every file: reject NaN/inf or silent samples (slower)")
    g.add_argument("--min_seconds", "--min-seconds", type=float, default=PrepOptions.min_seconds, metavar="S",
                   help="shorter files are bad")
    g.add_argument("--on_bad_file", "--on-bad-file", choices=("skip", "raise"), default="skip",
                   help="skip an unusable file (listed in bad_files.txt) or stop at it")


def options(a):
    return PrepOptions(min_utterances=a.min_utterances, imbalance_factor=a.imbalance_factor,
                       holdout_per_speaker=a.holdout_per_speaker, valid_per_speaker=a.valid_per_speaker,
                       holdout_by=a.holdout_by, shot_many_above=a.shot_many_above, shot_few_below=a.shot_few_below,
                       shot_quantiles=tuple(a.shot_quantiles) if a.shot_quantiles else None, seed=a.seed,
                       workers=a.prep_workers, verify_samples=a.verify_samples, on_bad_file=a.on_bad_file,
                       min_seconds=a.min_seconds)


# the synthetic generator's parameters offered here (its seed and clip lengths keep their defaults)
SYNTHETIC = {
    "n_train_speakers": ("--speakers", "training speakers (a long tail of utterance counts)"),
    "max_utts": ("--max-utts", "utterances of the head speaker"),
    "imbalance": ("--corpus-imbalance", "max/min utterance count ratio of the training speakers"),
    "n_test_speakers": (None, "verification speakers (at most 40)"),
    "test_utts": (None, "utterances per verification speaker"),
    "utts_per_session": (None, "utterances per session (video)"),
    "n_trials": (None, "verification trials"),
}


def parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    sub = ap.add_subparsers(dest="corpus", required=True, metavar="CORPUS")

    def corpus(name, text):
        return sub.add_parser(name, help=text, description=text, formatter_class=DefaultsHelpFormatter)

    p = corpus("voxceleb", "VoxCeleb1 (and VoxCeleb2): train on the dev sets, VoxCeleb1's trials")
    p.add_argument("--data_folder", "--vox1", metavar="DIR", help="the VoxCeleb1 root (wav/, vox1_meta.csv, meta/)")
    p.add_argument("--vox2_folder", "--vox2", metavar="DIR", help="the VoxCeleb2 root")
    p.add_argument("--train_sets", "--train-sets", nargs="+", choices=("vox1_dev", "vox2_dev"), metavar="SET",
                   help="training sets, of vox1_dev vox2_dev; None: every corpus given")
    p.add_argument("--trial_list", "--trials", default="O", metavar="LIST",
                   help="O, H, E, a file name in the VoxCeleb1 root or its meta/, or a path; 'none' for no trials")
    add_options(p)
    p = corpus("cnceleb", "CN-Celeb1 (and CN-Celeb2): train on CN-Celeb1 dev (+ CN-Celeb2), CN-Celeb1's trials")
    p.add_argument("--data_folder", "--cn1", metavar="DIR", help="the CN-Celeb1 root (CN-Celeb_flac: data/, dev/, eval/)")
    p.add_argument("--cn2_folder", "--cn2", metavar="DIR", help="the CN-Celeb2 root (CN-Celeb2_flac)")
    p.add_argument("--concat_min_seconds", type=number_or_none, metavar="S",
                   help="concatenate the short training clips of one speaker and genre into utterances of at "
                        "least this many seconds (WeSpeaker's CN-Celeb recipe); None: off. The cnceleb_* "
                        "hparams turn it on with 5 s, as WeSpeaker")
    add_options(p)
    p = corpus("librispeech", "LibriSpeech: train on some subsets, generated trials on others")
    p.add_argument("--data_folder", "--data", required=True, metavar="DIR", help="the LibriSpeech root (required)")
    p.add_argument("--train_subsets", "--train-subsets", nargs="+", metavar="SUBSET", default=["train-clean-100"],
                   help="subsets to train on")
    p.add_argument("--trial_subsets", "--trial-subsets", nargs="+", metavar="SUBSET", default=["test-clean"],
                   help="subsets of the verification speakers")
    p.add_argument("--n_trials", "--n-trials", type=int, default=20000, metavar="N", help="generated trials")
    add_options(p)
    p = corpus("folder", "one folder per speaker: DATA_FOLDER/<speaker>/**/*.{wav,flac,ogg}")
    p.add_argument("--data_folder", "--data", required=True, metavar="DIR",
                   help="the folder holding one folder per speaker (required)")
    p.add_argument("--session_pattern", "--session-pattern", metavar="RE",
                   help="regex with (?P<session>...) on file names, where files are not in session folders; "
                        "DSPSpeech-20's word: '^[^-]+-(?P<session>[^-]+)-'; None: session folders or none")
    p.add_argument("--verification_speakers", "--verification-speakers", type=number_or_none, metavar="N",
                   help="hold out this many speakers (or this fraction, below 1) for generated verification "
                        "trials; None: no verification unless --trials")
    p.add_argument("--trials", metavar="FILE",
                   help="a trial list instead ('<0|1> enrol test' or 'enrol test target|nontarget', paths relative "
                        "to --data_folder); its speakers are left out of training")
    p.add_argument("--n_trials", "--n-trials", type=int, default=20000, metavar="N", help="generated trials")
    add_options(p)
    p = corpus("synthetic", "write the synthetic demo corpus (VoxCeleb1 layout) if absent, and prepare it")
    p.add_argument("--data_folder", "--corpus-dir", metavar="DIR",
                   help="where the audio is written (or found); None: <prepared_folder>_corpus")
    from ltspk.data.synthetic import make_corpus

    defaults = inspect.signature(make_corpus).parameters
    g = p.add_argument_group("synthetic corpus (ltspk.data.synthetic.make_corpus; the hparams' corpus_options)")
    for key, (old, text) in SYNTHETIC.items():
        default = defaults[key].default
        names = [f"--{key}"] + ([old] if old else [])
        g.add_argument(*names, type=type(default), metavar="X" if isinstance(default, float) else "N",
                       default=argparse.SUPPRESS, help=f"{text} (default: {default})")  # only those given are passed
    add_options(p)
    return ap


def from_subcommand(argv):
    """(corpus, data_folder, prepared_folder, PrepOptions, corpus options) from a corpus sub-command."""
    a = parse_args(parser(), argv)
    data = a.data_folder
    if a.corpus == "voxceleb":
        kwargs = {"vox2_folder": a.vox2_folder, "train_sets": a.train_sets,
                  "trial_list": None if a.trial_list.lower() == "none" else a.trial_list}
    elif a.corpus == "cnceleb":
        kwargs = {"cn2_folder": a.cn2_folder, "concat_min_seconds": a.concat_min_seconds}
    elif a.corpus == "librispeech":
        kwargs = {"train_subsets": a.train_subsets, "trial_subsets": a.trial_subsets, "n_trials": a.n_trials}
    elif a.corpus == "folder":
        vs = a.verification_speakers
        kwargs = {"session_pattern": a.session_pattern, "trials": a.trials, "n_trials": a.n_trials,
                  "verification_speakers": int(vs) if vs is not None and vs >= 1 else vs}
    else:
        save = Path(a.prepared_folder)
        data = data or str(save.with_name(save.name + "_corpus"))
        kwargs = {k: getattr(a, k) for k in SYNTHETIC if hasattr(a, k)}
    return a.corpus, data, a.prepared_folder, options(a), kwargs


def from_hparams(argv):
    """The same five from an hparams file and SpeechBrain-style overrides, as training reads them."""
    import speechbrain as sb

    from ltspk.data.corpora import options_from_hparams
    from ltspk.train.hparams import load_hparams

    hparams_file, _, overrides = sb.parse_arguments(argv)
    return options_from_hparams(load_hparams(hparams_file, overrides))


def is_hparams_file(arg):
    return arg.lower().endswith((".yaml", ".yml")) and not arg.startswith("-")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        if argv and is_hparams_file(argv[0]):
            if not Path(argv[0]).is_file():
                raise LtspkError(f"{argv[0]}: hparams file not found")
            corpus, data, prepared, opts, corpus_options = from_hparams(argv)
        else:
            corpus, data, prepared, opts, corpus_options = from_subcommand(argv)
        from ltspk.data.prepared import check_prepared, prepare_whole  # after parsing: --help needs neither (nor torch)
        from ltspk.data.summary import load_counts, summary_text

        if check_prepared(prepared, corpus, data, opts, corpus_options):  # as training: reused, never replaced
            print(f"{prepared}: already prepared from this corpus with these options (delete it to prepare again)")
        else:
            prepare_whole(corpus, data, prepared, opts, corpus_options)
    except ValueError as e:  # argparse types and option checks that name the option
        raise LtspkError(str(e)) from None
    print(summary_text(load_counts(Path(prepared) / "counts.json")))
    print("plot:", Path(prepared) / "counts.png")


if __name__ == "__main__":
    run(main)
