#!/usr/bin/env python3
"""Trial generation time at 10^4..10^6 trials (``ltspk.data.trials.generate_trials``), with the
ratio per 10x: linear generation takes about 10x the time for 10x the trials.

  python benchmarks/bench_trials.py [--speakers 1000] [--per-speaker 100] [--sizes 10000 100000 1000000]
"""

import argparse
import time

from ltspk.data.trials import generate_trials


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speakers", type=int, default=1000)
    ap.add_argument("--per-speaker", type=int, default=100)
    ap.add_argument("--sessions", type=int, default=5, help="sessions per speaker (cross-session targets)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    a = ap.parse_args()
    speaker_of = {f"s{s}/u{u}": f"s{s}" for s in range(a.speakers) for u in range(a.per_speaker)}
    session_of = {k: int(k.rsplit("u", 1)[1]) % a.sessions for k in speaker_of}
    print(f"{a.speakers} speakers x {a.per_speaker} utterances, {a.sessions} sessions each")
    print(f"{'trials':>10} {'seconds':>9} {'x previous':>11} {'targets':>9}")
    prev = None
    for n in a.sizes:
        t = time.perf_counter()
        trials = generate_trials(speaker_of, n, seed=0, session_of=session_of)
        dt = time.perf_counter() - t
        ratio = f"{dt / prev:.1f}" if prev else "-"
        print(f"{n:>10} {dt:>9.2f} {ratio:>11} {sum(t.label for t in trials):>9}")
        prev = dt


if __name__ == "__main__":
    main()
