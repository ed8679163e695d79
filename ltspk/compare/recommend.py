"""One answer per speaker set: which configuration and inference to use, chosen on validation.

For each goal (few-shot speaker ID, overall speaker ID, verification EER) the candidate is the
comparison row (configuration x stage x inference family, over its seeds) with the best mean
*validation* figure: speaker-ID accuracy on ``spkid_valid`` at the setting each seed chose there,
and for verification the EER over all pairs of the ``spkid_valid`` recordings. The test split is
never looked at to choose; the chosen row's test figure and its paired difference from the
baseline's plain inference (with the comparison's interval) are then reported, and when that
interval includes 0 the answer says plainly that no method beats the baseline beyond noise.

A row qualifies only if every one of its seeds has the validation figure (runs evaluated before
validation figures were recorded do not: re-run ``evaluate.py`` / ``retrain_classifier.py``).
``resolvable`` is the median half-width of the goal's paired-difference intervals: differences
smaller than that cannot be told from noise with this test set and these seeds.
"""

from dataclasses import asdict, dataclass

import numpy as np

GOALS = (  # name, task, metric, higher is better
    ("few-shot speaker ID", "speaker_id", "few", True),
    ("overall speaker ID", "speaker_id", "overall", True),
    ("verification EER", "verification", "eer", False),
)


@dataclass
class Recommendation:
    goal: str
    metric: str
    config: str | None = None
    stage: str | None = None
    inference: str | None = None
    chosen: list | None = None
    validation_mean: float | None = None
    test_mean: float | None = None
    test_sd: float | None = None
    versus: dict | None = None  # paired difference from the baseline's plain inference
    baseline: str | None = None
    is_baseline: bool = False
    resolvable: float | None = None
    candidates: int = 0
    without_validation: int = 0
    verdict: str = ""

    def as_dict(self):
        return asdict(self)


def validation_figure(run, record, metric):
    """The validation figure behind a headline record: the same stage, task, family and
    parameters on ``spkid_valid`` (None when the run has none)."""
    for r in run.records:
        if (r.role == "validation" and r.split == "spkid_valid" and r.stage == record.stage and r.task == record.task
                and r.family == record.family and r.params == record.params):
            return r.metrics.get(metric)
    return None


def _mean_validation(row, metric):
    """The mean validation figure over the row's seeds; None unless every seed has a finite one."""
    values = [validation_figure(run, rec, metric) for run, rec in row.per_seed.values()]
    if not values or any(v is None or not np.isfinite(v) for v in values):
        return None
    return float(np.mean(values))


def recommend(rows, baseline):
    """A ``Recommendation`` per goal from ``ltspk.compare.comparison.aggregate``'s rows (the baseline's own
    rows are ``Row.is_reference``) and its baseline label, for the text."""
    out = []
    for goal, task, metric, higher in GOALS:
        rec = Recommendation(goal, metric, baseline=baseline)
        rows_t = [r for r in rows if r.task == task]
        halves = [(v["high"] - v["low"]) / 2 for r in rows_t for k, v in r.versus.items()
                  if k == metric and v.get("low") is not None and v.get("high") is not None]
        rec.resolvable = float(np.median(halves)) if halves else None
        scored = [(r, _mean_validation(r, metric)) for r in rows_t]
        rec.without_validation = sum(1 for _, v in scored if v is None)
        scored = [(r, v) for r, v in scored if v is not None]
        rec.candidates = len(scored)
        if not scored:
            why = ("a validation EER needs two or more validation recordings of a speaker (valid_per_speaker >= 2), "
                   "or runs evaluated by this ltspk" if metric == "eer" else
                   "runs evaluated before validation figures were recorded, or no validation speakers in this group")
            rec.verdict = f"no configuration has a validation figure for this goal ({why}): nothing can be chosen " \
                          "without the test split"
            out.append(rec)
            continue
        # ties: the baseline first (the least change), then the order of the comparison
        best, val = max(scored, key=lambda rv: ((rv[1] if higher else -rv[1]), rv[0].is_reference))
        stats = best.stats.get(metric) or {}
        rec.config, rec.stage, rec.inference, rec.chosen = best.config, best.stage, best.mode, best.chosen
        rec.validation_mean, rec.test_mean, rec.test_sd = val, stats.get("mean"), stats.get("sd")
        rec.is_baseline = best.is_reference
        rec.versus = best.versus.get(metric)
        rec.verdict = _verdict(rec)
        out.append(rec)
    return out


def _verdict(rec):
    if rec.baseline is None:
        return "no baseline among the runs: the choice stands alone, without a difference to judge it by"
    if rec.is_baseline:
        return f"the baseline itself ({rec.baseline}, {rec.inference}) is best on validation: keep it"
    v = rec.versus
    if not v:
        return "no paired difference from the baseline could be computed"
    if v.get("low") is None:
        return "one seed and no bootstrap: the difference from the baseline has no interval"
    seeds = "" if v.get("n", 0) > 1 else " (one seed: seed-to-seed variance is not measured)"
    if v["verdict"] == "better":
        return f"beats {rec.baseline} plain beyond noise on the test split{seeds}"
    if v["verdict"] == "worse":
        return f"chosen on validation but worse than {rec.baseline} plain on the test split{seeds}"
    return f"no method beats {rec.baseline} plain beyond noise on this set{seeds}"


def _fmt(rec, x):
    return f"{x:.2f}" if x is not None else "-"


def recommendation_text(recs, markdown=True):
    """The short Recommendation section (Markdown, or plain text for the console)."""
    lines = ["### Recommendation (chosen on validation, never on the test split)", ""] if markdown else \
        ["Recommendation (chosen on validation, never on the test split):"]
    for r in recs:
        unit = "points" if r.metric != "eer" else "EER points"
        if r.config is None:
            lines.append(f"- **{r.goal}**: {r.verdict}." if markdown else f"  {r.goal}: {r.verdict}.")
            continue
        what = f"{r.config}, {'stage 2 ' if r.stage == 'stage2' else ''}{r.inference}"
        if r.chosen:
            what += f" (settings per seed: {'; '.join(r.chosen)})"
        fig = f"validation {_fmt(r, r.validation_mean)}, test {_fmt(r, r.test_mean)}"
        if r.test_sd is not None:
            fig += f" ± {r.test_sd:.2f}"
        v = r.versus
        diff = ""
        if v and v.get("low") is not None and not r.is_baseline:
            diff = f"; vs {r.baseline} plain {v['mean']:+.2f} [{v['low']:+.2f}, {v['high']:+.2f}]"
        res = f"; differences under about {r.resolvable:.1f} {unit} are not resolvable here" if r.resolvable else ""
        text = f"{what}: {fig}{diff}: {r.verdict}{res}."
        lines.append(f"- **{r.goal}** ({r.metric}): {text}" if markdown else f"  {r.goal}: {text}")
    return "\n".join(lines) + "\n"
