"""The comparison report: Markdown and CSV tables over runs and seeds (plots: ``ltspk.compare.plots``)."""

import csv
import io

from ltspk.compare.comparison import run_intervals
from ltspk.evaluation.records import GROUPS
from ltspk.runtime.atomic import write_text

ID_COLS = ("config", "head", "stage", "inference", "chosen setting(s)", "seeds")
SID_COLS = tuple(f"{g} %" for g in GROUPS)
VER_COLS = ("EER %", "minDCF 0.01", "minDCF 0.05")
VS_COLS = ("vs baseline: overall", "vs baseline: few", "vs baseline: EER")
METRIC = {"many %": "many", "medium %": "medium", "few %": "few", "overall %": "overall", "EER %": "eer",
          "minDCF 0.01": "min_dcf_0.01", "minDCF 0.05": "min_dcf_0.05"}


def _num(v, col):
    return f"{v:.3f}" if col.startswith("minDCF") else f"{v:.2f}"


def _mean_sd(s, col):
    if not s:
        return ""
    text = _num(s["mean"], col)
    return text + (f" ± {_num(s['sd'], col)}" if s.get("sd") is not None else "")


def versus_text(v):
    """A difference with its interval and verdict, as the tables print it."""
    if not v:
        return ""
    if v["low"] is None:
        return f"{v['mean']:+.2f} (one seed)"
    one = " (one seed)" if v.get("n") == 1 else ""
    return f"{v['mean']:+.2f} [{v['low']:+.2f}, {v['high']:+.2f}] {v['verdict']}{one}"


def _stage(row):
    return "stage 2" if row.stage == "stage2" else "stage 1"


def aggregated_cells(row):
    cells = {"config": row.config, "head": row.head, "stage": _stage(row), "inference": row.mode,
             "chosen setting(s)": "; ".join(row.chosen), "seeds": str(len(row.per_seed))}
    for col, key in METRIC.items():
        cells[col] = _mean_sd(row.stats.get(key), col)
    cells["vs baseline: overall"] = versus_text(row.versus.get("overall"))
    cells["vs baseline: few"] = versus_text(row.versus.get("few"))
    cells["vs baseline: EER"] = versus_text(row.versus.get("eer"))
    return cells


def _md(cols, lines):
    text = sum(1 for c in cols if c in ID_COLS + ("run",))
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" if i < text else "---:" for i in range(len(cols))) + "|"]
    out += ["| " + " | ".join(line.get(c, "") for c in cols) + " |" for line in lines]
    return "\n".join(out) + "\n"


def _interval(t, col):
    v, lo, hi = t
    return f"{_num(v, col)} [{_num(lo, col)}, {_num(hi, col)}]"


def per_run_lines(runs, task):
    lines = []
    for run in runs:
        for rec in run.headline(task):
            ci = run_intervals(run, rec)
            line = {"run": run.label, "stage": "stage 2" if rec.stage == "stage2" else "stage 1", "inference": rec.label}
            cols = SID_COLS if task == "speaker_id" else VER_COLS
            for col in cols:
                key = METRIC[col]
                if key in ci:
                    line[col] = _interval(ci[key], col)
                elif rec.metrics.get(key) is not None:
                    line[col] = _num(rec.metrics[key], col)
            lines.append(line)
    return lines


def markdown(rows, runs, baseline, synthetic=False, notes=(), recommendation=""):
    """The comparison: ``notes`` (plain sentences) first, then the ``recommendation`` section, the
    tables over seeds, each run with its intervals, and the test-split diagnostics."""
    sid = [aggregated_cells(r) for r in rows if r.task == "speaker_id"]
    ver = [aggregated_cells(r) for r in rows if r.task == "verification"]
    n_seeds = sorted({len(r.per_seed) for r in rows})
    parts = [*(f"{n}\n" for n in notes)] + ([recommendation] if recommendation else []) + [
             "### Speaker ID by shot group, over seeds\n",
             f"Top-1 accuracy %, mean ± standard deviation over seeds ({', '.join(map(str, n_seeds))} per configuration). "
             "Tunable settings were chosen on the spkid_valid split of each seed; the chosen values are listed. "
             + (f"`vs baseline`: difference from {baseline} (plain), in points, with its 95% interval "
                "(the wider of a Student-t interval over the per-seed paired differences and a speaker bootstrap of "
                "their mean), and whether it is better, worse or within noise."
                if baseline else "No baseline configuration (AAM without LA loss) "
                "among the runs: no differences shown."),
             "", _md(ID_COLS + SID_COLS + VS_COLS[:2], sid)]
    if ver:
        parts += ["### Verification, over seeds\n", "EER % and normalised minDCF, mean ± standard deviation over seeds; "
                  "`vs baseline`: EER difference (negative is better).", "",
                  _md(ID_COLS + VER_COLS + VS_COLS[2:], ver)]
    parts += ["### Each run, with 95% bootstrap intervals (speakers resampled)\n",
              _md(("run", "stage", "inference") + SID_COLS, per_run_lines(runs, "speaker_id"))]
    vlines = per_run_lines(runs, "verification")
    if vlines:
        parts += ["", _md(("run", "stage", "inference") + VER_COLS, vlines)]
    diag = diagnostic_lines(runs)
    if diag:
        parts += ["", "### Diagnostics: every swept setting on the test split (NOT used to choose anything)\n",
                  _md(("run", "stage", "inference") + SID_COLS, diag)]
    if synthetic and not any("SYNTHETIC" in n for n in notes):
        parts.append("\nAll figures are on the SYNTHETIC demo corpus.\n")
    return "\n".join(parts)


def diagnostic_lines(runs):
    lines = []
    for run in runs:
        for rec in run.records:
            if rec.role == "diagnostic" and rec.task == "speaker_id":
                lines.append({"run": run.label, "stage": "stage 2" if rec.stage == "stage2" else "stage 1",
                              "inference": rec.key, **{c: _num(rec.metrics[METRIC[c]], c) for c in SID_COLS
                                                      if rec.metrics.get(METRIC[c]) is not None}})
    return lines


def write_csv(path, rows):
    """One line per configuration x inference family: means, standard deviations, differences."""
    cols = list(ID_COLS) + [f"{c} {s}" for c in METRIC for s in ("mean", "sd")] + \
        [f"{c} {s}" for c in VS_COLS for s in ("mean", "low", "high", "verdict")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        cells = {k: v for k, v in aggregated_cells(r).items() if k in ID_COLS}
        for col, key in METRIC.items():
            s = r.stats.get(key)
            cells[f"{col} mean"] = "" if not s else s["mean"]
            cells[f"{col} sd"] = "" if not s or s["sd"] is None else s["sd"]
        for col, key in zip(VS_COLS, ("overall", "few", "eer")):
            v = r.versus.get(key) or {}
            for s in ("mean", "low", "high", "verdict"):
                cells[f"{col} {s}"] = "" if v.get(s) is None else v[s]
        w.writerow(cells)
    write_text(path, buf.getvalue())
