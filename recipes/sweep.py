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

Each run folder records what it was made with (``sweep.json``: the hparams file, a hash of its whole
configuration, the arguments): a run folder made with another configuration or other arguments
(or without that record) is not reused; the sweep stops before running anything, naming the
folder and the difference (use another --root, or delete the folder).
"""

import argparse
import subprocess
import sys
from pathlib import Path

from ltspk.cli.entry import run

ROOT = Path(__file__).resolve().parents[1]

def experiment_name(hparams_file):
    """The ``experiment`` key of the whole configuration (a key of its base files too)."""
    from ltspk.train.layering import hparams_text

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


RECORD = "sweep.json"


def run_record(hparams_file, extra):
    """What a run is made with: the hparams file, a hash of its whole configuration (base files
    merged in) and the arguments, but for ``--output_folder`` (the folder itself, which may move)."""
    import hashlib

    from ltspk.train.layering import hparams_text

    args = list(extra)
    if "--output_folder" in args:
        i = args.index("--output_folder")
        del args[i:i + 2]
    return {"hparams": str(Path(hparams_file).resolve()),
            "hparams_sha256": hashlib.sha256(hparams_text(hparams_file).encode()).hexdigest(), "arguments": args}


def reuse_problem(folder, record):
    """Why run folder ``folder`` cannot be reused for a run made with ``record`` (None when it can:
    it does not exist yet, or was made with the same configuration and arguments)."""
    import json

    path = folder / RECORD
    if not path.is_file():
        if folder.is_dir() and any(folder.iterdir()):
            return (f"{folder}: the folder holds a run but no record of the arguments it was made with ({RECORD}): "
                    "it may have been made otherwise; use another --root, or delete the folder")
        return None
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return f"{path}: not valid JSON ({e})"
    if saved.get("arguments") != record["arguments"]:
        return (f"{folder}: made with the arguments {saved.get('arguments')}, this sweep gives {record['arguments']}; "
                "use another --root, or delete the folder")
    if saved.get("hparams_sha256") != record["hparams_sha256"]:
        return (f"{folder}: made from another configuration ({saved.get('hparams')}, as it was then) than "
                f"{record['hparams']} now; use another --root, or delete the folder")
    return None


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
    for key, instead in (("--seed", "--seeds"), ("--output_folder", "--root")):
        if any(a == key or a.startswith(key + "=") for a in passthrough):
            sys.exit(f"error: {key} after -- is set by the sweep for every run: use {instead} instead")
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
    problems = [p for hp, folder, extra in runs if (p := reuse_problem(folder, run_record(hp, extra)))]
    if problems:
        sys.exit("error: run folder(s) made with other settings than this sweep's:\n  " + "\n  ".join(problems))
    from ltspk.runtime.atomic import write_json

    for n, (hp, folder, extra) in enumerate(runs, start=1):
        folders.append(folder)
        done = (folder / "evaluation" / "records.json").is_file()
        if not a.dry_run and not (folder / RECORD).is_file():
            write_json(folder / RECORD, run_record(hp, extra))  # before the run writes anything
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
    run(main)
