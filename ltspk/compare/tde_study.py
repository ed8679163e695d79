"""Does TDE's premise hold for a speaker embedder, and does TDE help? Per configuration of
CausalNorm runs (optimiser x feature), over its seeds:

- cos(x, d) between test features and the moving-average direction, by shot group (the
  ``cos_to_direction`` diagnostic records): TDE removes ``alpha * cos * d``, so with cos near 0
  there is nothing to remove;
- the TDE alpha chosen on validation beside the official code's rule (alpha * mean cos = 1 on
  validation; from the README of the authors' repository, not the paper);
- speaker-ID accuracy of plain inference, TDE and post-hoc LA (headline records: settings chosen on
  validation), and TDE - plain on the same test items, per seed paired, over seeds the wider of a
  Student-t interval and a speaker bootstrap pooled over seeds (as ``ltspk.compare.comparison``);
- EER of cosine scoring.
"""

from dataclasses import dataclass, field

import numpy as np

from ltspk.compare import plots
from ltspk.compare.comparison import label_runs, paired_difference
from ltspk.compare.report import versus_text
from ltspk.compare.stats import over_seeds
from ltspk.evaluation.records import GROUPS
from ltspk.runtime.errors import DataError

MODES = ("plain", "tde", "posthoc_la")


@dataclass
class StudyRow:
    config: str
    settings: dict
    seeds: list
    cos: dict = field(default_factory=dict)        # group -> over_seeds of the test mean cos
    alpha_chosen: list = field(default_factory=list)
    alpha_rule: list = field(default_factory=list)
    accuracy: dict = field(default_factory=dict)   # mode -> group -> over_seeds
    tde_gain: dict = field(default_factory=dict)   # "few" / "overall" -> {mean, low, high, verdict}
    eer: dict | None = None


def _one(run, task, family, role="headline", split=None):
    recs = [r for r in run.records if r.task == task and r.family == family and r.role == role
            and (split is None or r.split == split)]
    return recs[0] if recs else None


def study(runs):
    """One ``StudyRow`` per configuration of CausalNorm runs (those with cos diagnostics)."""
    label_runs(runs)
    configs = {}
    for run in runs:
        if _one(run, "diagnostic", "cos_to_direction", "diagnostic", "spkid_test") is None:
            raise DataError(run.folder, "no cos_to_direction diagnostic: not a CausalNorm run, or evaluated "
                                        "before the diagnostics existed (evaluate it again)")
        configs.setdefault(run.config, []).append(run)
    rows = []
    for config, members in configs.items():
        head = members[0].info.get("head_settings") or {}
        settings = {"optimizer": members[0].info.get("optimizer"), "lr_schedule": members[0].info.get("lr_schedule"),
                    "feature": head.get("feature"), "mu": head.get("mu")}
        row = StudyRow(config, settings, [r.seed for r in members])
        for g in GROUPS:
            row.cos[g] = over_seeds([(_one(r, "diagnostic", "cos_to_direction", "diagnostic", "spkid_test")
                                      .metrics.get(g) or {}).get("mean") for r in members])
        for r in members:
            tde = _one(r, "speaker_id", "tde")
            row.alpha_chosen.append(tde.params.get("tde_alpha") if tde else None)
            valid = _one(r, "diagnostic", "cos_to_direction", "diagnostic", "spkid_valid")
            row.alpha_rule.append((valid.metrics.get("suggested") or {}).get("tde_alpha") if valid else None)
        for mode in MODES:
            recs = [_one(r, "speaker_id", mode) for r in members]
            row.accuracy[mode] = {g: over_seeds([x.metrics.get(g) if x else None for x in recs]) for g in GROUPS}
        pairs = [((r, _one(r, "speaker_id", "plain")), (r, _one(r, "speaker_id", "tde"))) for r in members]
        pairs = [p for p in pairs if p[0][1] and p[1][1]]
        for g in ("few", "overall"):
            gain = paired_difference(pairs, g)
            if gain:
                row.tde_gain[g] = gain
        row.eer = over_seeds([(_one(r, "verification", "cosine") or _Empty).metrics.get("eer") for r in members])
        rows.append(row)
    return rows


class _Empty:
    metrics = {}


def _ms(s, digits=2):
    if not s:
        return "-"
    return f"{s['mean']:.{digits}f}" + (f" ± {s['sd']:.{digits}f}" if s.get("sd") is not None else "")


def _values(vs):
    return ", ".join("-" if v is None else f"{v:g}" if v < 100 else ">100" for v in vs)


def markdown(rows, synthetic=False):
    tag = " (SYNTHETIC corpus)" if synthetic else ""
    out = [f"## TDE study{tag}", "",
           "cos(x, d) on spkid_test, mean over seeds ± sd (each seed: the mean over test items of the group):", "",
           "| config | optimiser | schedule | feature | mu | seeds | many | medium | few | overall | "
           "alpha chosen on valid (per seed) | official code's rule 1/mean cos on valid (per seed) |",
           "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        s = r.settings
        rule = [None if v is None else round(v, 1) for v in r.alpha_rule]
        out.append(f"| {r.config} | {s['optimizer']} | {s['lr_schedule']} | {s['feature']} | {s['mu']} | {len(r.seeds)} | "
                   + " | ".join(_ms(r.cos.get(g), 3) for g in GROUPS)
                   + f" | {_values(r.alpha_chosen)} | {_values(rule)} |")
    out += ["", "Speaker-ID top-1 accuracy % (mean ± sd over seeds; TDE and post-hoc LA at the setting chosen on "
            "spkid_valid), TDE - plain on the same test items with its 95% interval, and EER % of cosine scoring:", "",
            "| config | inference | many | medium | few | overall | TDE - plain: few | TDE - plain: overall | EER % |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        for mode in MODES:
            acc = r.accuracy[mode]
            gain = eer = few = ""
            if mode == "tde":
                few, gain = (versus_text(r.tde_gain.get(g)) or "-" for g in ("few", "overall"))
            if mode == "plain":
                eer = _ms(r.eer)
            out.append(f"| {r.config} | {mode} | " + " | ".join(_ms(acc.get(g)) for g in GROUPS)
                       + f" | {few} | {gain} | {eer} |")
    return "\n".join(out) + "\n"


CAPTION = ("cos(x, d): cosine between a test feature x and CausalNorm's moving-average direction d of the training "
           "features (TDE removes alpha * cos(x, d) * d from each head's logit input). TDE equals plain inference when "
           "the alpha chosen on validation is 0 (a bar at 0 marked 'alpha 0').")


def plot(rows, path, title=""):
    """Left: mean cos(x, d) on test by shot group per configuration (sd over seeds); right: TDE -
    plain accuracy (few, overall) with its interval; a caption says what cos(x, d) is and when
    TDE is plain inference."""

    plt = plots.pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(max(10.0, 2.2 * len(rows) + 4), 4.6))
    x = np.arange(len(rows))
    width = 0.8 / len(GROUPS)
    for i, g in enumerate(GROUPS):
        means = [r.cos[g]["mean"] if r.cos.get(g) else np.nan for r in rows]
        sds = [(r.cos[g]["sd"] or 0.0) if r.cos.get(g) else 0.0 for r in rows]
        a.bar(x + (i - 1.5) * width, means, width, yerr=sds, capsize=2, label=g)
    a.axhline(0, color="black", lw=0.8)
    a.set_xticks(x, [r.config for r in rows], rotation=20, ha="right")
    a.set_ylabel("mean cos(x, d) on test")
    a.set_title("Is there a head-class direction to remove?")
    a.legend(title="shot group", fontsize=8)
    for i, g in enumerate(("few", "overall")):
        v = [r.tde_gain.get(g) for r in rows]
        means = np.array([t["mean"] if t else np.nan for t in v])
        lo = np.array([t["mean"] - t["low"] if t and t["low"] is not None else 0.0 for t in v])
        hi = np.array([t["high"] - t["mean"] if t and t["high"] is not None else 0.0 for t in v])
        b.bar(x + (i - 0.5) * 0.38, means, 0.38, yerr=[lo, hi], capsize=3, label=g)
    b.axhline(0, color="black", lw=0.8)
    b.set_xticks(x, [r.config for r in rows], rotation=20, ha="right")
    b.set_ylabel("TDE - plain, accuracy points (95% interval)")
    b.set_title("TDE at the alpha chosen on validation")
    b.legend(title="shot group", fontsize=8)
    for k, r in enumerate(rows):
        if r.alpha_chosen and all(v == 0 for v in r.alpha_chosen):
            b.annotate("alpha 0 on every seed:\nTDE = plain", (k, 0), xytext=(0, 12), textcoords="offset points",
                       ha="center", fontsize=7, color="0.3")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    import textwrap

    fig.text(0.01, 0.01, "\n".join(textwrap.wrap(CAPTION, 170)), fontsize=7.5, color="0.25", ha="left", va="bottom")
    return plots.save_figure(fig, path)
