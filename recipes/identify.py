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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.errors import DataError, LtspkError  # noqa: E402


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
    from ltspk.embedders import load_embedder
    from ltspk.enrolment import EnrolSettings, enrol

    s = EnrolSettings(test_per_speaker=a.test_per_speaker, valid_per_speaker=a.valid_per_speaker, impostors=a.impostors,
                      many_above=a.many_above, few_below=a.few_below, quantiles=a.quantiles,
                      imbalance_factor=a.imbalance_factor, target_far=a.target_far, fars=a.fars, method=a.method,
                      reject_by=a.reject_by, max_seconds=a.max_seconds,
                      batch_size=a.batch_size or (1 if a.device.startswith("cpu") else 16), seed=a.seed)
    embedder = load_embedder(a.embedder, a.device)
    enrol(embedder, a.data, a.out, s, cache=a.cache, progress=not a.quiet)
    print((Path(a.out) / "report.md").read_text())
    print(f"model: {a.out}")


def cmd_add(a):
    from ltspk.enrolment import EnrolmentModel, add_speakers

    model = EnrolmentModel(a.model)
    info, report = add_speakers(a.model, a.data, model.embedder(a.embedder, a.device), progress=not a.quiet,
                                cache=a.cache)
    print((Path(a.model) / "report.md").read_text())
    print(f"added {len(report['added_speakers'])} speaker(s) ({report['files_embedded']} file(s) embedded): "
          f"{len(info['speakers'])} enrolled")


def cmd_predict(a):
    from ltspk.enrolment import EnrolmentModel

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
            print(f"{r['file']}\t{r['speaker']}\t({r['reject_by']} {r['score']:.3f}, threshold {r['threshold']:.3f})\t{top}")
        failed += "error" in r
    if failed:
        sys.exit(f"error: {failed} file(s) could not be identified")


def cmd_calibrate(a):
    from ltspk.calibration import calibrate_trials

    dev = read_scores(a.dev)
    ev = read_scores(a.eval) if a.eval else (None, None)
    cal, out = calibrate_trials(*dev, *ev, prior=a.prior, p_targets=tuple(a.p_target), c_miss=a.c_miss, c_fa=a.c_fa)
    if a.out:
        from ltspk.atomic import write_json

        write_json(a.out, out)
    print(json.dumps(out, indent=2))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="cpu")
    common.add_argument("--quiet", action="store_true", help="no progress bars")
    common.add_argument("--cache", help="also read and write embeddings in this .npz (keyed per file and embedder)")

    e = sub.add_parser("enrol", parents=[common], help="embed and enrol a speaker set; fit and evaluate classifiers")
    e.add_argument("--embedder", required=True)
    e.add_argument("--data", required=True, help="speaker-folder corpus DIR/<speaker>/..., manifest CSV, or prepared folder")
    e.add_argument("--out", required=True, help="model folder to write")
    e.add_argument("--test-per-speaker", type=int, default=2)
    e.add_argument("--valid-per-speaker", type=int, default=2)
    e.add_argument("--impostors", help="never-enrolled speakers for open-set figures and the threshold: "
                                                        "a number, a fraction, or comma-separated names")
    e.add_argument("--many-above", type=float, default=100)
    e.add_argument("--few-below", type=float, default=20)
    e.add_argument("--quantiles", type=float, nargs=2, metavar=("LOW", "HIGH"), help="shot thresholds at count quantiles")
    e.add_argument("--imbalance-factor", type=float, help="sub-sample the data to an exponential long tail")
    e.add_argument("--target-far", type=float, default=0.05, help="false-alarm rate of the 'unknown' threshold")
    e.add_argument("--fars", type=float, nargs="+", default=[0.01, 0.05, 0.1])
    e.add_argument("--method", default="auto")
    e.add_argument("--reject-by", default="auto", choices=["auto", "prob", "score"])
    e.add_argument("--max-seconds", type=float, help="embed at most the first N seconds of each file")
    e.add_argument("--batch-size", type=int, help="files per batch (default 1 on CPU: exact, batch-independent embeddings)")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=cmd_enrol)

    p = sub.add_parser("predict", parents=[common], help="top-k speakers with calibrated probabilities, or 'unknown'")
    p.add_argument("--model", required=True)
    p.add_argument("audio", nargs="+")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--method", help="another fitted method than the deployed one")
    p.add_argument("--embedder", help="the embedder's folder if it moved (it must be the same model)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")
    p.set_defaults(func=cmd_predict)

    d = sub.add_parser("add", parents=[common], help="enrol new speakers without re-embedding the old ones")
    d.add_argument("--model", required=True)
    d.add_argument("--data", required=True)
    d.add_argument("--embedder", help="the embedder's folder if it moved (it must be the same model)")
    d.set_defaults(func=cmd_add)

    c = sub.add_parser("calibrate", help="logistic calibration of verification scores; Cllr, min Cllr, actDCF")
    c.add_argument("--dev", required=True, help="development trial scores (fit)")
    c.add_argument("--eval", help="evaluation trial scores (report); without it the development trials are reported")
    c.add_argument("--prior", type=float, default=0.5, help="training prior of the logistic regression")
    c.add_argument("--p-target", type=float, nargs="+", default=[0.01, 0.05])
    c.add_argument("--c-miss", type=float, default=1.0)
    c.add_argument("--c-fa", type=float, default=1.0)
    c.add_argument("--out", help="write the calibration and metrics as JSON")
    c.set_defaults(func=cmd_calibrate)

    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    a.func(a)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (LtspkError, ValueError) as e:
        sys.exit(f"error: {e}")
