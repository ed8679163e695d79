#!/usr/bin/env python3
"""Run configurations over several seeds (and imbalance factors), then compare them.

  python recipes/sweep.py hparams/demo_aam.yaml hparams/demo_tde.yaml --seeds 1 2 3 \\
      [--imbalance-factors 10 20 50] [--stage2] [--root results/sweep] [--compare results/sweep/compare] \\
      [-- --any_key VALUE ...]

Each run is ``recipes/train.py`` in its own process (then ``retrain_classifier.py`` with
--stage2) into ROOT/<experiment>[/IF<factor>]/<seed>; the seed drives the corpus split and the
training alike. A run whose evaluation records already exist is skipped (a half-trained one
resumes from its checkpoint), so an interrupted sweep is continued by the same command.
Arguments after ``--`` go to every run.
"""

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def experiment_name(hparams_file):
    """The ``experiment`` key of the whole configuration (a key of its base files too)."""
    from ltspk.hparams import hparams_text

    for line in hparams_text(hparams_file).splitlines():
        if line.startswith("experiment:"):
            return line.split(":", 1)[1].split("#")[0].strip()
    return Path(hparams_file).stem


def with_imbalance(passthrough, factor):
    """The pass-through arguments with ``--imbalance_factor FACTOR`` (a top-level key of every
    shipped configuration); one given there already is an error, not silently replaced."""
    args = list(passthrough)
    if any(a == "--imbalance_factor" or a.startswith("--imbalance_factor=") for a in args):
        sys.exit("error: --imbalance_factor after -- and --imbalance-factors both set the imbalance factor: keep one")
    return args + ["--imbalance_factor", f"{factor:g}"]


def plan(a, passthrough):
    runs = []
    for hp in a.hparams:
        for factor in a.imbalance_factors or [None]:
            for seed in a.seeds:
                folder = Path(a.root) / experiment_name(hp)
                if factor is not None:
                    folder = folder / f"IF{factor:g}"
                folder = folder / str(seed)
                extra = ["--seed", str(seed), "--output_folder", str(folder)]
                extra += passthrough if factor is None else with_imbalance(passthrough, factor)
                runs.append((hp, folder, extra))
    return runs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    passthrough = []
    if "--" in argv:
        i = argv.index("--")
        argv, passthrough = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hparams", nargs="+", help="hparams files, one configuration each")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="seeds (default: %(default)s)")
    ap.add_argument("--imbalance-factors", type=float, nargs="+", help="long-tail sub-sampling targets "
                    "(default: the configuration's own)")
    ap.add_argument("--stage2", action="store_true", help="also run the decoupled stage 2 on each run")
    ap.add_argument("--root", default="results/sweep", help="folder of the runs (default: %(default)s)")
    ap.add_argument("--compare", help="write the comparison here (default: ROOT/compare)")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    a = ap.parse_args(argv)
    for hp in a.hparams:
        if not Path(hp).is_file():
            sys.exit(f"error: {hp}: hparams file not found")
    py = sys.executable
    folders = []
    runs = plan(a, passthrough)
    for n, (hp, folder, extra) in enumerate(runs, start=1):
        folders.append(folder)
        done = (folder / "evaluation" / "records.json").is_file()
        cmds = [] if done else [[py, str(ROOT / "recipes" / "train.py"), hp, *extra]]
        if a.stage2 and not (done and (folder / "stage2" / "records.json").is_file()):
            cmds.append([py, str(ROOT / "recipes" / "retrain_classifier.py"), hp, *extra])
        for cmd in cmds:
            print(f"[{n}/{len(runs)}] " + " ".join(cmd[1:]), flush=True)
            if not a.dry_run and subprocess.run(cmd).returncode != 0:
                sys.exit(f"error: run {folder} failed (the command above); run the sweep again to continue")
        if not cmds:
            print(f"[{n}/{len(runs)}] {folder}: already evaluated, skipped")
    out = a.compare or str(Path(a.root) / "compare")
    cmd = [py, str(ROOT / "recipes" / "compare.py"), *map(str, folders), "--out", out]
    print(" ".join(cmd[1:]), flush=True)
    if not a.dry_run and subprocess.run(cmd).returncode != 0:
        sys.exit("error: the comparison failed (the command above)")


if __name__ == "__main__":
    main()
