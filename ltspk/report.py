"""Comparison of runs: one table of every head and inference mode, and plots."""

import csv
import io
import json
from pathlib import Path

import numpy as np

from ltspk.atomic import atomic_path, write_text
from ltspk.embeddings_io import load_arrays
from ltspk.errors import DataError

COLUMNS = ["run", "head", "inference", "EER %", "minDCF 0.01", "minDCF 0.05", "many", "medium", "few", "overall"]


def load_run(run_dir):
    path = Path(run_dir) / "results.json"
    try:
        r = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "no results.json: train and evaluate this run first") from None
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})") from None
    for key in ("experiment", "head", "speaker_id", "verification"):
        if key not in r:
            raise DataError(path, f"not an ltspk results file (no {key!r})")
    r["_dir"] = str(run_dir)
    return r


def run_label(r):
    return r.get("experiment") or Path(r["_dir"]).name


def head_label(r):
    tau = r.get("loss_logit_adjustment_tau") or 0
    return r["head"] + (f" + LA loss tau={tau:g}" if tau else "")


def verification_variants(v):
    """(name, metrics) of every verification result of a run: cosine scoring of the plain
    embeddings first, then TDE-debiased embeddings per alpha, then AS-norm."""
    if not v:
        return
    yield "cosine", v
    for alpha, t in (v.get("tde_embeddings") or {}).items():
        yield f"TDE embeddings alpha={alpha}", t
    if v.get("asnorm"):
        yield f"AS-norm top-{v['asnorm']['top_k']}", v["asnorm"]


def _detection_columns(m):
    return {"EER %": m.get("eer"), "minDCF 0.01": m.get("min_dcf_0.01"), "minDCF 0.05": m.get("min_dcf_0.05")}


def comparison_rows(runs):
    """One row per run and inference mode. Verification columns are filled on the 'plain'
    row only: post-hoc LA and TDE on logits change speaker ID, not the embeddings."""
    rows = []
    for r in runs:
        v = r.get("verification") or {}
        modes = {k: a for k, a in (r.get("speaker_id") or {}).items() if isinstance(a, dict)} or {"plain": {}}
        for mode, a in modes.items():
            plain = mode == "plain"
            rows.append({"run": run_label(r), "head": head_label(r), "inference": mode,
                         **_detection_columns(v if plain else {}),
                         **{g: a.get(g) for g in ("many", "medium", "few", "overall")}})
            if plain:
                for name, m in list(verification_variants(v))[1:]:
                    rows.append({"run": run_label(r), "head": head_label(r), "inference": name,
                                 **_detection_columns(m)})
    return rows


def _cell(v, col):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.3f}" if col.startswith("minDCF") else f"{v:.2f}"
    return str(v)


def markdown(rows, synthetic=False):
    """A headline table (each run's plain row, verification rows, and the best variant of each
    inference family), then the full table."""
    head = [r for r in rows if r.get("overall") is None] + headline_rows(rows)
    order = {id(r): i for i, r in enumerate(rows)}
    head.sort(key=lambda r: order[id(r)])
    return ("### Headline: plain inference and the best variant of each inference family\n\n" + _table(head, synthetic)
            + "\n### Every inference mode\n\n" + _table(rows, synthetic))


def _table(rows, synthetic):
    best = {}
    for col in ("many", "medium", "few", "overall"):
        vals = [r.get(col) for r in rows if r.get(col) is not None]
        best[col] = max(vals) if vals else None
    for col in ("EER %", "minDCF 0.01", "minDCF 0.05"):
        vals = [r.get(col) for r in rows if r.get(col) is not None]
        best[col] = min(vals) if vals else None
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * (len(COLUMNS) - 3)]
    for r in rows:
        cells = []
        for c in COLUMNS:
            text = _cell(r.get(c), c)
            cells.append(f"**{text}**" if text and r.get(c) == best.get(c) else text)
        out.append("| " + " | ".join(cells) + " |")
    note = ["", "Bold: best in the column. EER/minDCF (cosine scoring of embeddings) are on each run's plain row: "
            "post-hoc LA and TDE on logits change speaker ID only. Speaker-ID columns: top-1 accuracy % by shot group."]
    if synthetic:
        note.append("All figures are on the SYNTHETIC demo corpus.")
    return "\n".join(out + note) + "\n"


def write_csv(path, rows):
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS)
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c) for c in COLUMNS})
    write_text(path, buf.getvalue())


def _save(fig, path):
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _family(mode):
    return mode.split(" ")[0].split("=")[0]


def headline_rows(rows):
    """Per run: the plain row and, of every other inference family (post-hoc LA, TDE, cRT,
    tau-norm, LWS, NCM), the variant with the best overall accuracy."""
    best = {}
    for r in rows:
        if r.get("overall") is None or r["inference"] == "tde alpha=0":  # alpha 0 is the plain classifier
            continue
        key = (r["run"], _family(r["inference"]))
        if key not in best or r["overall"] > best[key]["overall"] or r["inference"] == "plain":
            best[key] = r
    return list(best.values())


def plot_shot_groups(rows, path):
    """One panel per shot group; x: inference family (its best variant), one colour per run."""
    plt = _pyplot()
    rows = headline_rows(rows)
    runs = list(dict.fromkeys(r["run"] for r in rows))
    families = list(dict.fromkeys(_family(r["inference"]) for r in rows))
    by = {(r["run"], _family(r["inference"])): r for r in rows}
    groups = ["many", "medium", "few", "overall"]
    fig, axes = plt.subplots(2, 2, figsize=(max(8, 1.3 * len(families) + 2), 6.5), sharey=True)
    axes = axes.ravel()
    width = 0.8 / max(1, len(runs))
    lows = [r.get(g) for r in rows for g in groups if r.get(g) is not None]
    for ax, g in zip(axes, groups):
        for i, run in enumerate(runs):
            vals = [by[(run, f)].get(g) if (run, f) in by and by[(run, f)].get(g) is not None else np.nan
                    for f in families]
            ax.bar(np.arange(len(families)) + i * width - 0.4 + width / 2, vals, width, label=run)
        ax.set_xticks(np.arange(len(families)), families, rotation=45, ha="right", fontsize=8)
        ax.set_title(g)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(max(0, (min(lows) if lows else 0) - 10), 101)
    for ax in axes[::2]:
        ax.set_ylabel("top-1 accuracy %")
    axes[-1].legend(fontsize=8, loc="lower right")
    fig.suptitle("speaker ID by shot group: each inference family at its best setting", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def plot_per_speaker(runs, counts, path, modes=("plain",), bins=6):
    """Speaker-ID accuracy against the speaker's training utterances (log x): faint dots per
    speaker, and the mean over log-spaced bins of training counts, one line per run and mode."""
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for r in runs:
        f = Path(r["_dir"]) / "spkid_predictions.npz"
        if not f.is_file():
            continue
        z = load_arrays(f, ["modes", "speakers", "targets", "predictions"])
        for m_i, mode in enumerate(z["modes"]):
            if str(mode) not in modes:
                continue
            correct = z["predictions"][m_i] == z["targets"]
            spk = z["speakers"]
            uniq = sorted(set(spk.tolist()))
            n = np.array([counts.get(s, np.nan) for s in uniq], dtype=float)
            acc = np.array([100 * correct[spk == s].mean() for s in uniq])
            ok = np.isfinite(n)
            n, acc = n[ok], acc[ok]
            if not n.size:
                continue
            edges = np.geomspace(n.min(), n.max() * 1.0001, bins + 1)
            which = np.clip(np.digitize(n, edges) - 1, 0, bins - 1)
            centres = np.sqrt(edges[:-1] * edges[1:])
            mean = np.array([acc[which == b].mean() if (which == b).any() else np.nan for b in range(bins)])
            line, = ax.plot(centres, mean, "-o", lw=1.8, ms=5, label=f"{run_label(r)}: {mode}")
            ax.plot(n, acc, ".", color=line.get_color(), alpha=0.25)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("training utterances of the speaker (log)")
    ax.set_ylabel("speaker-ID accuracy %")
    ax.set_ylim(-5, 105)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.set_title("per speaker (dots) and mean over log-spaced count bins (lines)", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_det(runs, path):
    """DET curves (probit axes) of every run's verification scores."""
    from scipy.stats import norm

    from ltspk.metrics import det_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5])
    for r in runs:
        f = Path(r["_dir"]) / "scores_verification.npz"
        if not f.is_file():
            continue
        z = load_arrays(f, ["scores", "labels"])
        fa, miss = det_curve(z["scores"], z["labels"])
        clip = np.clip
        ax.plot(norm.ppf(clip(fa, 1e-4, 1 - 1e-4)), norm.ppf(clip(miss, 1e-4, 1 - 1e-4)),
                label=f"{run_label(r)} (EER {r['verification']['eer']:.2f}%)")
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(5e-4), norm.ppf(0.6))
    ax.set_ylim(norm.ppf(5e-4), norm.ppf(0.6))
    ax.set_xlabel("false alarm rate %")
    ax.set_ylabel("miss rate %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
