#!/usr/bin/env python3
"""Decoupled stage 2 (Kang et al.): cRT, tau-norm, LWS and NCM on frozen embeddings of a trained run.

  python recipes/retrain_classifier.py hparams/demo_tde.yaml [--output_folder RUN_DIR]

Training embeddings are extracted once (cached in RUN_DIR/stage2/); the classifiers are then
fitted in seconds. Results go to RUN_DIR/stage2/results.json and into RUN_DIR/results.json,
so recipes/compare.py shows them beside the stage-1 inference modes.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ltspk.errors import LtspkError  # noqa: E402


def main(argv):
    from ltspk.experiment import trained_experiment
    from ltspk.stage2 import run_stage2

    exp, _, _ = trained_experiment(argv)
    summary = run_stage2(exp)
    print("| classifier | many | medium | few | overall |\n|---|---:|---:|---:|---:|")
    for name, a in summary["speaker_id"].items():
        cells = " | ".join("-" if a[g] is None else f"{a[g]:.2f}" for g in ("many", "medium", "few", "overall"))
        print(f"| {name} | {cells} |")
    print(f"tau chosen on {summary['tau_validation']['source']}")
    print("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in summary["seconds"].items()))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except (LtspkError, RuntimeError) as e:
        sys.exit(f"error: {e}")
