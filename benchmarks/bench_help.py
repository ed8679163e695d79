#!/usr/bin/env python3
"""Wall time of each recipe's --help (median of 3 runs, a fresh interpreter each): --help imports neither
torch nor SpeechBrain, so it should answer in about a second. A benchmark, not a timed test.

  python benchmarks/bench_help.py [--repeats 3]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ("prepare.py", "train.py", "evaluate.py", "retrain_classifier.py")


def help_seconds(recipe, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        r = subprocess.run([sys.executable, str(ROOT / "recipes" / recipe), "--help"], capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if r.returncode != 0:
            raise SystemExit(f"{recipe} --help failed: {r.stderr[-500:]}")
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    print(f"{'recipe':<24} --help wall time (median of {a.repeats})")
    for recipe in RECIPES:
        print(f"{recipe:<24} {help_seconds(recipe, a.repeats):.2f} s")


if __name__ == "__main__":
    main()
