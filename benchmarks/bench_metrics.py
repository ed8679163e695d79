#!/usr/bin/env python3
"""EER + minDCF: ltspk (one sort) vs SpeechBrain 1.1 vs scikit-learn's roc_curve.

Prints, for 10^3..10^6 trials, wall time and peak extra memory of each, measured side by
side in one run, each in a fresh process, and the ratios to ltspk. SpeechBrain runs only
up to --sb-max trials (its EER loops over 2N thresholds; its minDCF builds N x 2N matrices).
sklearn's roc_curve gives the curve only: EER/minDCF are then read off it with numpy.

  python benchmarks/bench_metrics.py [--sizes 1000 10000 100000 1000000] [--sb-max 10000]
"""

import argparse
import json
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np
method, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
labels = (rng.random(n) < 0.1).astype(int)
scores = np.round(rng.normal(labels * 2.0, 1.0), 4)
import torch  # noqa: F401  (imported before the baseline for every method alike)
if method == "ltspk":
    from ltspk.evaluation.metrics import operating_points, eer, min_dcf
    def go():
        pts = operating_points(scores, labels)
        return eer(None, None, pts)[0], min_dcf(None, None, 0.01, points=pts)[0]
elif method == "speechbrain":
    from speechbrain.utils.metric_stats import EER, minDCF
    pos, neg = torch.tensor(scores[labels == 1]), torch.tensor(scores[labels == 0])
    def go():
        return EER(pos, neg)[0], minDCF(pos, neg, p_target=0.01)[0] / 0.01
else:
    from sklearn.metrics import roc_curve
    def go():
        fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
        fnr = 1 - tpr
        i = np.argmin(np.abs(fpr - fnr))
        return (fpr[i] + fnr[i]) / 2, np.min(0.01 * fnr + 0.99 * fpr) / 0.01
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter(); e, d = go(); dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"s": dt, "mb": (peak - base) / 1024, "eer": e, "dcf": d}))
"""


def measure(method, n, timeout):
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, method, str(n)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    ap.add_argument("--sb-max", type=int, default=10_000, help="largest size SpeechBrain is run at")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args()
    print(f"CPU: {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          "peak MB = growth of the process's peak resident memory during the metric")
    print(f"{'trials':>9} | {'method':<12} | {'time s':>9} | {'peak MB':>8} | {'x ltspk time':>12} | "
          f"{'EER %':>7} | {'minDCF':>7}")
    for n in a.sizes:
        base = None
        for method in ("ltspk", "sklearn", "speechbrain"):
            if method == "speechbrain" and n > a.sb_max:
                print(f"{n:>9} | {method:<12} | {'skipped: > --sb-max (quadratic)':>48}")
                continue
            t0 = time.perf_counter()
            m = measure(method, n, a.timeout)
            if m is None:
                print(f"{n:>9} | {method:<12} | timed out after {time.perf_counter() - t0:.0f} s")
                continue
            if "error" in m:
                print(f"{n:>9} | {method:<12} | failed: {m['error']}")
                continue
            base = base or m["s"]
            print(f"{n:>9} | {method:<12} | {m['s']:>9.4f} | {m['mb']:>8.1f} | {m['s'] / base:>12.1f} | "
                  f"{100 * m['eer']:>7.3f} | {m['dcf']:>7.4f}")


if __name__ == "__main__":
    main()
