#!/usr/bin/env python3
"""Prepare manifests from a corpus on disk (or write and prepare the synthetic demo corpus).

  python recipes/prepare.py voxceleb    --vox1 DIR [--vox2 DIR] --save DIR [--trials O|H|E|FILE]
  python recipes/prepare.py cnceleb     --cn1 DIR [--cn2 DIR] --save DIR
  python recipes/prepare.py librispeech --data DIR --save DIR [--train-subsets ...]
  python recipes/prepare.py folder      --data DIR --save DIR [--session-pattern RE]
                                        [--verification-speakers N|FRACTION | --trials FILE]
  python recipes/prepare.py synthetic   --save DIR [--corpus-dir DIR]

Every corpus keeps each speaker's natural utterance count; see --help for the options.
"""

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.data.prepare import PrepOptions  # noqa: E402
from ltspk.data.prepared import prepare_whole  # noqa: E402
from ltspk.data.summary import load_counts, summary_text  # noqa: E402
from ltspk.errors import LtspkError  # noqa: E402


def add_options(p):
    g = p.add_argument_group("long-tail controls (shared by every corpus)")
    g.add_argument("--save", required=True, help="output folder for manifests and counts")
    g.add_argument("--min-utterances", type=int, default=1, help="drop speakers with fewer utterances")
    g.add_argument("--imbalance-factor", type=float, help="long-tail sub-sampling to this max/min ratio")
    g.add_argument("--holdout", type=int, default=2,
                   help="speaker-ID test utterances per training speaker (default: %(default)s)")
    g.add_argument("--valid", type=int, default=1,
                   help="speaker-ID validation utterances per training speaker, where every tuned setting is "
                        "chosen (default: %(default)s, as the corpus configurations; 0: none, and tuning is refused)")
    g.add_argument("--many-above", type=float, default=100, help="shot group 'many': n > this")
    g.add_argument("--few-below", type=float, default=20, help="shot group 'few': n < this")
    g.add_argument("--quantiles", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="shot groups at these quantiles of the counts instead")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=8, help="threads probing audio headers")
    g.add_argument("--verify-samples", action="store_true", help="read every file: reject NaN/inf/silent")
    g.add_argument("--on-bad-file", choices=("skip", "raise"), default="skip",
                   help="skip (list in bad_files.txt) or stop at an unusable file (default: %(default)s)")
    g.add_argument("--min-seconds", type=float, default=0.1, help="shorter files are bad (default: %(default)s)")


def options(a):
    return PrepOptions(min_utterances=a.min_utterances, imbalance_factor=a.imbalance_factor,
                       holdout_per_speaker=a.holdout, valid_per_speaker=a.valid,
                       shot_many_above=a.many_above, shot_few_below=a.few_below,
                       shot_quantiles=tuple(a.quantiles) if a.quantiles else None, seed=a.seed,
                       workers=a.workers, verify_samples=a.verify_samples, on_bad_file=a.on_bad_file,
                       min_seconds=a.min_seconds)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="corpus", required=True)
    p = sub.add_parser("voxceleb")
    p.add_argument("--vox1")
    p.add_argument("--vox2")
    p.add_argument("--train-sets", nargs="+", choices=("vox1_dev", "vox2_dev"))
    p.add_argument("--trials", default="O", help="O, H, E, a file name or path; 'none' for no trials")
    add_options(p)
    p = sub.add_parser("cnceleb")
    p.add_argument("--cn1")
    p.add_argument("--cn2")
    add_options(p)
    p = sub.add_parser("librispeech")
    p.add_argument("--data", required=True)
    p.add_argument("--train-subsets", nargs="+", default=["train-clean-100"])
    p.add_argument("--trial-subsets", nargs="+", default=["test-clean"])
    p.add_argument("--n-trials", type=int, default=20000)
    add_options(p)
    p = sub.add_parser("folder", help="one folder per speaker: DIR/<speaker>/**/*.{wav,flac,ogg}")
    p.add_argument("--data", required=True, help="the folder holding one folder per speaker")
    p.add_argument("--session-pattern", help="regex with (?P<session>...) on file names, where files are not in "
                   "session folders; DSPSpeech-20's word: '^[^-]+-(?P<session>[^-]+)-'")
    p.add_argument("--verification-speakers", type=float, help="hold out this many speakers (or this fraction) "
                   "for generated verification trials")
    p.add_argument("--trials", help="a trial list instead ('<0|1> enrol test' or 'enrol test target|nontarget', "
                   "paths relative to --data); its speakers are left out of training")
    p.add_argument("--n-trials", type=int, default=20000, help="generated trials (default: %(default)s)")
    add_options(p)
    p = sub.add_parser("synthetic", help="write the synthetic demo corpus (VoxCeleb1 layout) and prepare it")
    p.add_argument("--corpus-dir", help="where to write the audio (default: <save>_corpus)")
    p.add_argument("--speakers", type=int, default=48)
    p.add_argument("--max-utts", type=int, default=80)
    p.add_argument("--corpus-imbalance", type=float, default=40.0)
    add_options(p)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    kwargs = {}
    data = None
    if a.corpus == "voxceleb":
        data = a.vox1
        kwargs = {"vox2_folder": a.vox2, "train_sets": a.train_sets,
                  "trial_list": None if a.trials.lower() == "none" else a.trials}
    elif a.corpus == "cnceleb":
        data, kwargs = a.cn1, {"cn2_folder": a.cn2}
    elif a.corpus == "librispeech":
        data = a.data
        kwargs = {"train_subsets": a.train_subsets, "trial_subsets": a.trial_subsets, "n_trials": a.n_trials}
    elif a.corpus == "folder":
        vs = a.verification_speakers
        data = a.data
        kwargs = {"session_pattern": a.session_pattern, "trials": a.trials, "n_trials": a.n_trials,
                  "verification_speakers": int(vs) if vs is not None and vs >= 1 else vs}
    else:
        data = a.corpus_dir or str(Path(a.save).with_name(Path(a.save).name + "_corpus"))
        kwargs = {"n_train_speakers": a.speakers, "max_utts": a.max_utts, "imbalance": a.corpus_imbalance}
    try:
        prepare_whole(a.corpus, data, a.save, options(a), kwargs)
    except (LtspkError, ValueError) as e:
        sys.exit(f"error: {e}")
    print(summary_text(load_counts(Path(a.save) / "counts.json")))
    print("plot:", Path(a.save) / "counts.png")


if __name__ == "__main__":
    main()
