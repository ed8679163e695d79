"""Comparing runs: load their records, label them uniquely, group seeds of one configuration,
and attach the uncertainty of every figure (``ltspk.compare.stats``).

A *configuration* is an experiment name with its head and imbalance-factor target; its runs
are its seeds. Only ``headline`` records are compared: plain inference, and each tunable
family at the setting chosen on ``spkid_valid`` (the chosen setting can differ between seeds:
it is listed). The baseline (default: the configuration of an AAM head without the LA loss) is
compared with every other configuration's headline figures: per seed the paired difference on
the same test items; over seeds the mean difference, with the wider of a Student-t 95% interval
over the seeds' differences and a speaker bootstrap of their mean (pooled over seeds), so that
seeds that happen to agree never make an interval narrower than the test set allows.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ltspk.compare.stats import accuracy_interval, eer_interval, over_seeds, pooled_paired_difference, verdict
from ltspk.embedding.tables import load_arrays
from ltspk.evaluation.records import GROUPS, STAGE_FOLDERS, collect
from ltspk.runtime.errors import DataError


@dataclass
class Run:
    folder: Path
    info: dict
    records: list
    failures: dict
    label: str = ""
    _arrays: dict = field(default_factory=dict)

    @property
    def config(self):
        i = self.info
        imb = i.get("imbalance_factor_target")
        return (i.get("experiment") or self.folder.name) + (f" IF={imb:g}" if imb else "")

    @property
    def seed(self):
        return self.info.get("seed")

    def headline(self, task):
        return [r for r in self.records if r.role == "headline" and r.task == task]

    def predictions(self, stage):
        if stage not in self._arrays:
            f = self.folder / STAGE_FOLDERS[stage] / "spkid_predictions.npz"
            self._arrays[stage] = load_arrays(f, ["modes", "speakers", "targets", "predictions"]) if f.is_file() else None
        return self._arrays[stage]

    def correct(self, record):
        """(bool per test item, speaker per item) of a speaker-ID record, or None."""
        z = self.predictions(record.stage)
        if z is None:
            return None
        modes = [str(m) for m in z["modes"]]
        if record.key not in modes:
            return None
        return z["predictions"][modes.index(record.key)] == z["targets"], z["speakers"]

    def scores(self):
        f = self.folder / STAGE_FOLDERS["evaluate"] / "scores_verification.npz"
        if not f.is_file():
            return None
        return load_arrays(f, ["scores", "labels", "enrol_speakers", "test_speakers"])

    def counts(self):
        f = self.folder / STAGE_FOLDERS["evaluate"] / "counts.json"
        return json.loads(f.read_text())["counts"] if f.is_file() else {}


def corpus_of(run):
    """What a run was tested on: the corpus and its data folder's name (the synthetic corpus alone)."""
    info = run.info
    if info.get("synthetic") or info.get("corpus") == "synthetic":
        return "synthetic"
    name = Path(info.get("data_folder") or "").name
    return f"{info.get('corpus', '?')}" + (f" ({name})" if name else "")


def corpus_key(run):
    """``corpus_of`` with the whole data folder: two folders of one name are two corpora (the
    synthetic corpus is generated alike wherever it is written)."""
    name = corpus_of(run)
    return (name, "" if name == "synthetic" else run.info.get("data_folder") or "")


def corpus_labels(runs):
    """The corpora of ``runs``, each once: ``corpus_of``, with the whole data folder added where two
    folders share a name."""
    keys = {corpus_key(r) for r in runs}
    names = [name for name, _ in keys]
    return sorted({name if names.count(name) == 1 else f"{name} at {folder}" for name, folder in keys})


def check_runs(runs, allow_mixed_corpora=False):
    """Refuse what would make the comparison silently wrong: one configuration and seed twice
    (it would count as one seed), or runs on different corpora (unless asked for)."""
    seen = {}
    for r in runs:
        key = (r.config, r.seed)
        if key in seen:
            raise DataError(r.folder, f"configuration {r.config!r} seed {r.seed} is also {seen[key]}: two runs of one "
                                      "configuration and seed would count as one seed; give each run once")
        seen[key] = r.folder
    corpora = corpus_labels(runs)
    if len(corpora) > 1 and not allow_mixed_corpora:
        raise DataError(runs[0].folder, f"the runs are on different corpora ({', '.join(corpora)}): their figures are "
                                        "not comparable; compare one corpus at a time, or pass --allow-mixed-corpora")
    return corpora


def comparison_notes(runs):
    """Plain sentences that belong above the tables: the corpus, the hold-outs, empty shot
    groups, one-seed configurations."""
    notes = []
    corpora = corpus_labels(runs)
    if corpora == ["synthetic"]:
        notes.append("All figures are on the SYNTHETIC demo corpus.")
    elif len(corpora) > 1:
        notes.append(f"The runs are on DIFFERENT corpora ({', '.join(corpora)}): differences between them are not "
                     "differences between methods.")
    else:
        notes.append(f"Corpus: {corpora[0]}.")
    holdouts = sorted({r.info.get("holdout_by") or "utterance" for r in runs})
    text = {"session": "whole sessions the speaker never trains on (cross-session)",
            "utterance": "random recordings (sessions may be shared with training)"}
    notes.append("Speaker-ID test and validation recordings: " + "; ".join(f"{text.get(h, h)}" for h in holdouts)
                 + ("" if len(holdouts) == 1 else ": the runs DIFFER in how they were held out") + ".")
    empty = {}
    for r in runs:
        for g, n in (r.info.get("shot_group_sizes") or {}).items():
            if not n:
                empty.setdefault(g, []).append(r.label or str(r.folder))
    for g, labels in sorted(empty.items()):
        notes.append(f"WARNING: the {g}-shot group is EMPTY in {len(labels)} run(s) (e.g. {labels[0]}): its column "
                     "shows '-' there; set shot_many_above / shot_few_below to auto.")
    configs = {}
    for r in runs:
        configs.setdefault(r.config, set()).add(r.seed)
    one = sorted(c for c, seeds in configs.items() if len(seeds) == 1)
    if one:
        notes.append(f"One seed only for {', '.join(one)}: seed-to-seed variance is not measured there; its intervals "
                     "are the speaker bootstrap alone.")
    return notes


def load_run(folder):
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "no such run folder")
    res = collect(folder)
    return Run(folder, res["run"], res["records"], res["failures"])


def label_runs(runs):
    """Unique labels: configuration + seed, and the folder name where that still collides."""
    for r in runs:
        r.label = f"{r.config} seed={r.seed}"
    seen = {}
    for r in runs:
        seen.setdefault(r.label, []).append(r)
    for same in seen.values():
        if len(same) > 1:
            for r in same:
                r.label += f" ({r.folder.name})"
    return runs


def is_default_baseline(run):
    return run.info.get("head") == "AAMHead" and not run.info.get("loss_logit_adjustment_tau")


def family_key(record):
    """Records of one inference family compare across seeds whatever setting each seed chose."""
    return (record.task, record.stage, record.family) if record.chosen_on else (record.task, record.stage, record.key)


def _mode_name(record):
    return record.family if record.chosen_on else record.key


REFERENCE_MODES = ("plain", "cosine")  # the baseline's inference every other row is compared with


@dataclass
class Row:
    """One configuration x inference family, over its seeds."""

    config: str
    head: str
    task: str
    stage: str
    mode: str
    chosen: list
    per_seed: dict  # seed -> (run, record)
    stats: dict = field(default_factory=dict)  # column -> over_seeds(...)
    versus: dict = field(default_factory=dict)  # column -> {"mean", "low", "high", "verdict", "n"}
    is_reference: bool = False  # the baseline's plain inference (cosine scoring): what ``versus`` is against


def aggregate(runs, baseline=None):
    """Rows of every configuration's headline figures over seeds, with differences against the
    baseline configuration (plain inference / cosine scoring) where one is present."""
    label_runs(runs)
    configs = {}
    for r in runs:
        configs.setdefault(r.config, []).append(r)
    rows = []
    for config, members in configs.items():
        keyed = {}
        for run in members:
            for rec in run.headline("speaker_id") + run.headline("verification"):
                keyed.setdefault(family_key(rec), {})[run.seed] = (run, rec)
        for (task, stage, _), per_seed in keyed.items():
            first = next(iter(per_seed.values()))[1]
            chosen = [", ".join(f"{k}={v:g}" for k, v in rec.params.items()) for _, rec in per_seed.values()
                      if rec.chosen_on]
            row = Row(config, members[0].info.get("head_label", members[0].info.get("head")), task, stage,
                      _mode_name(first), chosen, per_seed)
            cols = GROUPS if task == "speaker_id" else ("eer", "min_dcf_0.01", "min_dcf_0.05")
            for c in cols:
                row.stats[c] = over_seeds([rec.metrics.get(c) for _, rec in per_seed.values()])
            rows.append(row)
    bases = _baseline_configs(runs, baseline)
    if bases:
        _compare_with(rows, bases)
    names = sorted(set(bases.values()))
    return rows, (", ".join(names) + (" (each at the same imbalance factor)" if len(names) > 1 else "")) if names else None


def _imbalance(run):
    return run.info.get("imbalance_factor_target")


def _baseline_configs(runs, baseline):
    """{config: its baseline config}: the named one, or the AAM configuration without LA loss
    at the same imbalance factor (where exactly one exists)."""
    configs = {r.config: r for r in runs}
    if baseline:
        if baseline not in configs:
            raise DataError(baseline, f"no such configuration among the runs: {sorted(configs)}")
        return {c: baseline for c in configs}
    out = {}
    for c, run in configs.items():
        cands = sorted({r.config for r in runs if is_default_baseline(r) and _imbalance(r) == _imbalance(run)})
        if len(cands) == 1:
            out[c] = cands[0]
    return out


def _compare_with(rows, bases):
    for row in rows:
        base = bases.get(row.config)
        row.is_reference = row.config == base and row.mode in REFERENCE_MODES
        if base is None or row.is_reference:
            continue
        b = next((r for r in rows if r.config == base and r.task == row.task and r.mode in REFERENCE_MODES), None)
        if b is None:
            continue
        seeds = sorted(set(row.per_seed) & set(b.per_seed), key=str)
        pairs = [(b.per_seed[x], row.per_seed[x]) for x in seeds]
        for c in ("overall", "few") if row.task == "speaker_id" else ("eer",):
            diff = paired_difference(pairs, c, bootstrap=row.task == "speaker_id", higher_is_better=c != "eer")
            if diff:
                row.versus[c] = diff


def paired_difference(seed_pairs, column, bootstrap=True, higher_is_better=True):
    """B - A in ``column`` over seeds, from ``[((run_a, rec_a), (run_b, rec_b)), ...]`` (one pair a
    seed): ``{mean, low, high, n, verdict}`` with the wider of a Student-t interval over the seeds'
    differences and (``bootstrap``) a speaker bootstrap of their mean pooled over seeds, so that
    seeds too few for t, or too alike, never narrow it; None when no seed has both figures."""
    diffs = [b.metrics.get(column) - a.metrics.get(column) for (_, a), (_, b) in seed_pairs
             if a.metrics.get(column) is not None and b.metrics.get(column) is not None]
    if not diffs:
        return None
    s = over_seeds(diffs)
    low, high = s["low"], s["high"]
    boot = pooled_bootstrap(seed_pairs, column) if bootstrap else None
    if boot:
        low = boot[1] if low is None else min(low, boot[1])
        high = boot[2] if high is None else max(high, boot[2])
    return {"mean": s["mean"], "low": low, "high": high, "n": s["n"],
            "verdict": verdict(low, high, higher_is_better=higher_is_better)}


def pooled_bootstrap(seed_pairs, column):
    """Speaker bootstrap of the mean paired difference over seeds, or None when a seed's two
    runs were not tested on the same items in the same order."""
    pairs = []
    for (run_a, rec_a), (run_b, rec_b) in seed_pairs:
        ca, cb = run_a.correct(rec_a), run_b.correct(rec_b)
        if ca is None or cb is None or not np.array_equal(ca[1], cb[1]):
            return None
        keep = np.ones(len(ca[0]), dtype=bool) if column == "overall" else _groups_of(run_a, ca[1]) == column
        if not keep.any():
            return None
        pairs.append((ca[0][keep], cb[0][keep], ca[1][keep]))
    return pooled_paired_difference(pairs) if pairs else None


def _groups_of(run, speakers):
    f = run.folder / STAGE_FOLDERS["evaluate"] / "counts.json"
    shot = json.loads(f.read_text()).get("shot_groups", {}) if f.is_file() else {}
    return np.array([shot.get(str(s), "?") for s in speakers])


def run_intervals(run, record):
    """{column: (value, low, high)} of one run's headline record, speakers resampled."""
    out = {}
    if record.task == "speaker_id":
        c = run.correct(record)
        if c is None:
            return out
        correct, speakers = c
        groups = _groups_of(run, speakers)
        for g in GROUPS:
            keep = np.ones(len(correct), dtype=bool) if g == "overall" else groups == g
            if keep.any():
                out[g] = accuracy_interval(correct[keep], speakers[keep])
    elif record.family == "cosine":
        z = run.scores()
        if z is not None and len(z["scores"]) == record.metrics.get("n_trials"):
            out["eer"] = eer_interval(z["scores"], z["labels"], z["enrol_speakers"], z["test_speakers"])
    return out
