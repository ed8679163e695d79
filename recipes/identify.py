#!/usr/bin/env python3
"""Long-tailed speaker identification with any embedder: enrol, identify, add speakers, calibrate.

  python recipes/identify.py enrol --embedder SRC --data DIR|CSV --out MODEL_DIR [--impostors N|FRAC|a,b] [...]
  python recipes/identify.py predict --model MODEL_DIR AUDIO... [--top-k 3] [--json]
  python recipes/identify.py add --model MODEL_DIR --data NEWDIR
  python recipes/identify.py calibrate --dev DEV_SCORES --eval EVAL_SCORES [--p-target 0.01 ...]

SRC: an ltspk run folder, a SpeechBrain model folder (hyperparams.yaml + embedding_model.ckpt,
e.g. recipes/extract.py --export_model), ``run:DIR`` / ``speechbrain:DIR`` to say which, or
``resemblyzer`` (pip install 'ltspk[identify-resemblyzer]'). Nothing is downloaded. See docs/identify.md.

Score files for ``calibrate``: an .npz with ``scores`` and ``labels`` (as ltspk evaluation's
scores_verification.npz), or text lines ``<score> <0|1>``.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from ltspk.cli.argtypes import number_or_auto, number_or_none, parse_args
from ltspk.cli.entry import run
from ltspk.runtime.errors import DataError, LtspkError


def read_scores(path):
    import numpy as np

    p = Path(path)
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return z["scores"].astype(np.float64).ravel(), z["labels"].astype(int).ravel()
        rows = [line.split() for line in p.read_text().splitlines() if line.strip() and not line.startswith("#")]
        return np.array([float(r[0]) for r in rows]), np.array([int(r[1]) for r in rows])
    except FileNotFoundError:
        raise DataError(p, "score file not found") from None
    except (KeyError, ValueError, IndexError, OSError) as e:
        raise DataError(p, f"expected an .npz with scores and labels, or lines '<score> <0|1>' ({e})") from None


def cmd_enrol(a):
    from ltspk.embedding.embedders import load_embedder
    from ltspk.identify import EnrolSettings, enrol

    s = EnrolSettings(test_per_speaker=a.test_per_speaker, valid_per_speaker=a.valid_per_speaker, impostors=a.impostors,
                      many_above=a.many_above, few_below=a.few_below, quantiles=a.quantiles,
                      holdout_by=a.holdout_by, session_pattern=a.session_pattern,
                      imbalance_factor=a.imbalance_factor, target_far=a.target_far, fars=a.fars, method=a.method,
                      reject_by=a.reject_by, max_seconds=a.max_seconds,
                      batch_size=a.batch_size or (1 if a.device.startswith("cpu") else 16), seed=a.seed)
    embedder = load_embedder(a.embedder, a.device)
    enrol(embedder, a.data, a.out, s, cache=a.cache, progress=not a.quiet)
    print((Path(a.out) / "report.md").read_text())
    print(f"model: {a.out}")


def cmd_add(a):
    from ltspk.identify import EnrolmentModel, add_speakers

    model = EnrolmentModel(a.model)
    info, report = add_speakers(a.model, a.data, model.embedder(a.embedder, a.device), progress=not a.quiet,
                                cache=a.cache)
    print((Path(a.model) / "report.md").read_text())
    print(f"added {len(report['added_speakers'])} speaker(s) ({report['files_embedded']} file(s) embedded): "
          f"{len(info['speakers'])} enrolled")


def cmd_predict(a):
    from ltspk.identify import EnrolmentModel

    model = EnrolmentModel(a.model)
    results = model.predict(a.audio, model.embedder(a.embedder, a.device), a.top_k, a.method)
    failed = 0
    for r in results:
        if a.json:
            print(json.dumps(r))
        elif "error" in r:
            print(f"{r['file']}\terror: {r['error']}")
        else:
            top = "  ".join(f"{s} {p:.3f}" for s, p in r["top"])
            unknown = "" if r.get("p_unknown") is None else f"unknown {r['p_unknown']:.3f}  "
            print(f"{r['file']}\t{r['speaker']}\t({r['reject_by']} {r['score']:.3f}, threshold {r['threshold']:.3f})\t"
                  f"{unknown}{top}")
        failed += "error" in r
    if failed:
        sys.exit(f"error: {failed} file(s) could not be identified")


def cmd_calibrate(a):
    from ltspk.evaluation.calibration import calibrate_trials

    dev = read_scores(a.dev)
    ev = read_scores(a.eval) if a.eval else (None, None)
    cal, out = calibrate_trials(*dev, *ev, prior=a.prior, p_targets=tuple(a.p_target), c_miss=a.c_miss, c_fa=a.c_fa)
    if a.out:
        from ltspk.runtime.atomic import write_json

        write_json(a.out, out)
    print(json.dumps(out, indent=2))


def main(argv):
    from ltspk.cli.help import DefaultsHelpFormatter

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=DefaultsHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="cpu", help="torch device of the embedder")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--cache", metavar="NPZ", help="also read and write embeddings in this .npz (keyed per file and "
                                                       "embedder); None: no cache")

    def command(name, text, parents=(common,)):
        return sub.add_parser(name, parents=list(parents), help=text, description=text, formatter_class=DefaultsHelpFormatter)

    # every option is named as the hparams / prepare.py key of the same idea; the older dashed spellings still work
    e = command("enrol", "embed and enrol a speaker set; fit and evaluate classifiers")
    e.add_argument("--embedder", required=True, metavar="SRC",
                   help="an ltspk run folder, a SpeechBrain model folder, run:DIR / speechbrain:DIR, or resemblyzer (required)")
    e.add_argument("--data", required=True, metavar="DIR|CSV",
                   help="speaker-folder corpus DIR/<speaker>/..., manifest CSV, or prepared folder (required)")
    e.add_argument("--out", required=True, metavar="DIR", help="model folder to write (required)")
    e.add_argument("--holdout_per_speaker", "--test_per_speaker", "--test-per-speaker", dest="test_per_speaker", type=int,
                   default=2, metavar="N", help="test recordings held out per enrolled speaker")
    e.add_argument("--valid_per_speaker", "--valid-per-speaker", dest="valid_per_speaker", type=int, default=2, metavar="N",
                   help="validation recordings per enrolled speaker, where every setting is chosen (>= 1)")
    e.add_argument("--holdout_by", choices=("session", "utterance"), default="session",
                   help="session: a speaker's test and validation recordings are whole sessions (the folder after the "
                        "speaker, or --session_pattern) it never enrols from, where it has enough; utterance: random "
                        "recordings")
    e.add_argument("--session_pattern", metavar="RE",
                   help="regex with (?P<session>...) on file names, for files not in session folders "
                        "(DSPSpeech-20's word: '^[^-]+-(?P<session>[^-]+)-'); None: session folders or none")
    e.add_argument("--impostors", metavar="N|FRAC|a,b",
                   help="never-enrolled speakers for open-set figures and the threshold: a number, a fraction, or "
                        "comma-separated names; None: no open-set figures")
    e.add_argument("--shot_many_above", "--many_above", "--many-above", dest="many_above", type=number_or_auto,
                   default="auto", metavar="N|auto",
                   help="shot group 'many': more enrolled recordings than this; auto: the upper tertile of the counts")
    e.add_argument("--shot_few_below", "--few_below", "--few-below", dest="few_below", type=number_or_auto,
                   default="auto", metavar="N|auto",
                   help="shot group 'few': fewer enrolled recordings than this; auto: the lower tertile")
    e.add_argument("--shot_quantiles", "--quantiles", dest="quantiles", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="shot thresholds at these quantiles of the counts instead; None: the thresholds above")
    e.add_argument("--imbalance_factor", "--imbalance-factor", dest="imbalance_factor", type=number_or_none, metavar="X",
                   help="sub-sample the enrolled recordings to an exponential long tail; None: the natural counts")
    e.add_argument("--target_far", "--target-far", dest="target_far", type=float, default=0.05, metavar="P",
                   help="false-alarm rate of the 'unknown' threshold (set on validation impostors)")
    e.add_argument("--fars", type=float, nargs="+", default=[0.01, 0.05, 0.1], metavar="P",
                   help="false-alarm rates of the open-set report")
    e.add_argument("--method", default="auto", help="auto (best on validation) or linear, NCM, posthoc_la, la_loss, cRT, "
                                                    "tau_norm, LWS")
    e.add_argument("--reject_by", "--reject-by", dest="reject_by", default="auto", choices=["auto", "prob", "score"],
                   help="what the 'unknown' threshold applies to (auto: best validation OSCR)")
    e.add_argument("--max_seconds", "--max-seconds", dest="max_seconds", type=float, metavar="S",
                   help="embed at most the first S seconds of each file; None: whole files")
    e.add_argument("--batch_size", "--batch-size", dest="batch_size", type=int, metavar="N",
                   help="files per batch; None: 1 on CPU (exact, batch-independent embeddings), 16 otherwise")
    e.add_argument("--seed", type=int, default=0, help="draws the impostors, the hold-outs and the sub-sampling")
    e.set_defaults(func=cmd_enrol)

    p = command("predict", "top-k speakers with calibrated probabilities, or 'unknown'")
    p.add_argument("--model", required=True, metavar="DIR", help="an enrolment model folder (required)")
    p.add_argument("audio", nargs="+", help="audio files")
    p.add_argument("--top_k", "--top-k", dest="top_k", type=int, default=3, metavar="K", help="speakers listed per file")
    p.add_argument("--method", help="another fitted method than the deployed one; None: the deployed one")
    p.add_argument("--embedder", metavar="DIR", help="the embedder's folder if it moved (it must be the same model)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_predict)

    d = command("add", "enrol new speakers without re-embedding the old ones")
    d.add_argument("--model", required=True, metavar="DIR", help="an enrolment model folder (required)")
    d.add_argument("--data", required=True, metavar="DIR|CSV", help="the new speakers' recordings (required)")
    d.add_argument("--embedder", metavar="DIR", help="the embedder's folder if it moved (it must be the same model)")
    d.set_defaults(func=cmd_add)

    c = command("calibrate", "logistic calibration of verification scores; Cllr, min Cllr, actDCF", parents=())
    c.add_argument("--dev", required=True, metavar="SCORES", help="development trial scores (fit) (required)")
    c.add_argument("--eval", metavar="SCORES", help="evaluation trial scores (report); None: the development trials")
    c.add_argument("--prior", type=float, default=0.5, help="training prior of the logistic regression")
    c.add_argument("--p_target", "--p-target", dest="p_target", type=float, nargs="+", default=[0.01, 0.05], metavar="P",
                   help="target priors of the detection costs")
    c.add_argument("--c_miss", "--c-miss", dest="c_miss", type=float, default=1.0, help="cost of a miss")
    c.add_argument("--c_fa", "--c-fa", dest="c_fa", type=float, default=1.0, help="cost of a false alarm")
    c.add_argument("--out", metavar="JSON", help="write the calibration and metrics as JSON; None: print only")
    c.set_defaults(func=cmd_calibrate)

    a = parse_args(ap, argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        a.func(a)
    except ValueError as e:  # the user's own recordings and scores: what they cannot give is said in one line
        raise LtspkError(str(e)) from None


if __name__ == "__main__":
    run(main)
