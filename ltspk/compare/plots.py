"""Comparison plots: shot-group accuracy with error bars, accuracy against the imbalance factor,
accuracy per training-count bin with intervals, DET curves. Accuracy axes start at 0.

Every method (inference family) has one colour and marker in every figure and run
(``METHOD_STYLE``); configurations are told apart by line style. Titles name the corpus, the
configurations and the number of seeds (``context``)."""


import numpy as np

from ltspk.compare.comparison import corpus_labels, run_intervals
from ltspk.compare.stats import accuracy_interval
from ltspk.evaluation.metrics import det_curve
from ltspk.evaluation.records import GROUPS
from ltspk.runtime.figures import pyplot, save_figure

# one colour and marker per method, the same in every figure (colour-blind-safe Okabe-Ito colours first)
METHOD_STYLE = {
    "plain": ("#000000", "o"), "cosine": ("#000000", "o"), "posthoc_la": ("#E69F00", "s"),
    "tde": ("#56B4E9", "^"), "cRT": ("#009E73", "D"), "tau_norm": ("#CC79A7", "v"), "LWS": ("#0072B2", "P"),
    "NCM": ("#D55E00", "X"), "asnorm": ("#F0E442", "*"), "tde_embeddings": ("#56B4E9", "^"),
}
LINE_STYLES = ("-", "--", ":", "-.")


def method_style(mode):
    """(colour, marker) of an inference family; grey circles for one not listed."""
    return METHOD_STYLE.get(str(mode).split(" ")[0], ("#999999", "o"))


def context(runs):
    """What a figure shows, for its title: the corpus, the configurations and the seeds."""
    corpora = corpus_labels(runs)
    corpus = corpora[0] if len(corpora) == 1 else "MIXED corpora: " + ", ".join(corpora)
    if corpus == "synthetic":
        corpus = "SYNTHETIC corpus"
    configs = list(dict.fromkeys(r.config for r in runs))
    seeds = sorted({len({x.seed for x in runs if x.config == c}) for c in configs})
    n = "/".join(map(str, seeds))
    holdouts = {r.info.get("holdout_by") or "utterance" for r in runs}
    test = {"session": "; cross-session test", "utterance": "; random test recordings"}.get(holdouts.pop(), "") \
        if len(holdouts) == 1 else "; MIXED hold-outs"
    return f"{corpus}; {', '.join(configs)}; {n} seed{'s' if seeds != [1] else ''} each{test}"


def _bar_value(row, group):
    """(height, lower error, upper error): mean ± sd over seeds, or a one-seed run's bootstrap
    interval; None where the row has no figure for the group."""
    s = row.stats.get(group)
    if not s:
        return None
    if s["sd"] is not None:
        return s["mean"], s["sd"], s["sd"]
    run, rec = next(iter(row.per_seed.values()))
    ci = run_intervals(run, rec).get(group)
    if ci:
        return ci[0], ci[0] - ci[1], ci[2] - ci[0]
    return s["mean"], 0.0, 0.0


def plot_shot_groups(rows, path, title=""):
    """One panel per shot group; per configuration, one bar for each inference family it has
    (no empty slots); each family's fixed colour (``METHOD_STYLE``), legend below the panels."""
    plt = pyplot()
    rows = [r for r in rows if r.task == "speaker_id"]
    configs = list(dict.fromkeys(r.config for r in rows))
    modes = list(dict.fromkeys(f"{r.mode} ({'stage 2' if r.stage == 'stage2' else 'stage 1'})" for r in rows))
    colours = {m: method_style(m)[0] for m in modes}
    fig, axes = plt.subplots(2, 2, figsize=(max(8.0, 1.0 + 0.45 * len(rows)), 7.0), sharey=True)
    seeds = sorted({len(r.per_seed) for r in rows})
    for ax, g in zip(axes.ravel(), GROUPS):
        x, ticks, tick_labels = 0.0, [], []
        for config in configs:
            mine = [r for r in rows if r.config == config]
            start = x
            for r in mine:
                v = _bar_value(r, g)
                m = f"{r.mode} ({'stage 2' if r.stage == 'stage2' else 'stage 1'})"
                if v is not None:
                    ax.bar(x, v[0], 0.8, color=colours[m], yerr=[[v[1]], [v[2]]], capsize=2, ecolor="0.2")
                x += 1
            ticks.append((start + x - 1) / 2)
            tick_labels.append(config)
            x += 0.8
        if not any(r.stats.get(g) for r in rows):
            ax.text(0.5, 0.5, f"no {g}-shot speakers in the test split", ha="center", va="center",
                    transform=ax.transAxes, fontsize=9, color="0.4")
        ax.set_xticks(ticks, tick_labels, rotation=20, ha="right", fontsize=8)
        ax.set_title(f"{g}-shot speakers" if g != "overall" else "all test utterances", fontsize=10)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 accuracy %")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[m]) for m in modes]
    fig.legend(handles, modes, loc="upper center", ncol=min(4, len(modes)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.045))
    spread = "mean ± sd over seeds" if seeds and max(seeds) > 1 else "95% speaker-bootstrap interval (one seed)"
    fig.suptitle((f"{title}\n" if title else "") + f"Speaker ID by shot group (bars: {spread}; tunable settings "
                 "chosen on validation)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return save_figure(fig, path)


def plot_imbalance(rows, runs, path, modes=("plain",), title=""):
    """Few / medium / many / overall accuracy against the imbalance factor, one line per
    experiment and inference family in ``modes`` (mean ± sd over seeds). Needs two or more factors."""
    from matplotlib.ticker import NullFormatter

    by_config = {r.config: r for r in runs}
    factors = {c: by_config[c].info.get("imbalance_factor_target") for c in by_config}
    if len({f for f in factors.values() if f}) < 2:
        return None
    plt = pyplot()
    rows = [r for r in rows if r.task == "speaker_id" and factors.get(r.config) and r.mode in modes]
    lines = {}
    for r in rows:
        exp = by_config[r.config].info.get("experiment")
        lines.setdefault((exp, r.mode, r.stage), []).append(r)
    fig, axes = plt.subplots(1, 4, figsize=(14, 4), sharey=True)
    exps = list(dict.fromkeys(k[0] for k in lines))
    for ax, g in zip(axes, GROUPS):
        for (exp, mode, stage), rs in lines.items():
            e_i = exps.index(exp)
            rs = sorted(rs, key=lambda r: factors[r.config])
            xs = [factors[r.config] for r in rs]
            ys = [r.stats[g]["mean"] if r.stats.get(g) else np.nan for r in rs]
            es = [r.stats[g]["sd"] or 0.0 if r.stats.get(g) else 0.0 for r in rs]
            colour, marker = method_style(mode)
            ax.errorbar(xs, ys, yerr=es, capsize=3, color=colour, linestyle=LINE_STYLES[e_i % len(LINE_STYLES)],
                        marker=marker,
                        label=f"{exp}: {mode}" + (" (stage 2)" if stage == "stage2" else ""))
        ax.set_xscale("log")
        ticks = sorted({f for f in factors.values() if f})
        ax.set_xticks(ticks, [f"{f:g}" for f in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{g}-shot speakers" if g != "overall" else "all test utterances", fontsize=10)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 accuracy % (mean ± sd over seeds)")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.supxlabel("imbalance factor of the training set (most / fewest utterances per speaker)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_per_speaker(runs, path, modes=("plain",), bins=5, title=""):
    """Accuracy against the speaker's training utterances: speakers binned by count (log-spaced
    bins), one point per bin with its 95% interval (speakers resampled), seeds of a
    configuration pooled; one line per configuration and inference mode."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    pooled = {}
    for run in runs:
        counts = run.counts()
        for rec in run.headline("speaker_id"):
            name = rec.family if rec.chosen_on else rec.key
            if name not in modes:
                continue
            c = run.correct(rec)
            if c is None or not counts:
                continue
            correct, speakers = c
            n = np.array([counts.get(str(s), np.nan) for s in speakers], dtype=float)
            key = (run.config, name)
            p = pooled.setdefault(key, ([], [], []))
            p[0].append(correct)
            p[1].append(np.array([f"{run.seed}/{s}" for s in speakers]))  # a speaker of each seed is its own unit
            p[2].append(n)
    all_n = np.concatenate([np.concatenate(p[2]) for p in pooled.values()]) if pooled else np.array([])
    all_n = all_n[np.isfinite(all_n)]
    labels = []
    if all_n.size:
        edges = np.unique(np.round(np.geomspace(all_n.min(), all_n.max() + 1, bins + 1)))
        labels = [f"{int(edges[b])}-{int(edges[b + 1]) - 1}" if edges[b + 1] - 1 > edges[b] else f"{int(edges[b])}"
                  for b in range(len(edges) - 1)]
        width = 0.6 / max(1, len(pooled))
        configs = list(dict.fromkeys(c for c, _ in pooled))
        for i, ((config, mode), (cs, ss, ns)) in enumerate(pooled.items()):
            correct, spk, n = np.concatenate(cs), np.concatenate(ss), np.concatenate(ns)
            which = np.clip(np.searchsorted(edges, n, side="right") - 1, 0, len(edges) - 2)
            xs, ys, lo, hi = [], [], [], []
            for b in range(len(edges) - 1):
                keep = (which == b) & np.isfinite(n)
                if not keep.any():
                    continue
                v, low, high = accuracy_interval(correct[keep], spk[keep])
                xs.append(b - 0.3 + width * (i + 0.5))  # side by side within the bin: intervals stay visible
                ys.append(v)
                lo.append(v - low)
                hi.append(high - v)
            colour, marker = method_style(mode)
            ax.errorbar(xs, ys, yerr=[lo, hi], marker=marker, color=colour, capsize=3, label=f"{config}: {mode}",
                        linestyle=LINE_STYLES[configs.index(config) % len(LINE_STYLES)],
                        mfc="white" if configs.index(config) % 2 else colour)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("training utterances of the speaker (bins)")
    ax.set_ylabel("speaker-ID accuracy % (95% interval)")
    ax.set_ylim(0, 100)
    ax.grid(axis="y", alpha=0.3)
    if pooled:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_title((f"{title}\n" if title else "") + "Accuracy by training count (speakers binned; intervals "
                 "resample speakers; seeds pooled)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_det(runs, path, title=""):
    """DET curves (probit axes) of the cosine scores, the first seed of each configuration (line
    style per configuration)."""
    from scipy.stats import norm

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5])
    shown = []
    for run in runs:
        z = run.scores()
        if z is None or run.config in shown:
            continue
        shown.append(run.config)
        fa, miss = det_curve(z["scores"], z["labels"])
        rec = next((r for r in run.headline("verification") if r.family == "cosine"), None)
        eer_text = f" (EER {rec.metrics['eer']:.2f}%)" if rec else ""
        ax.plot(norm.ppf(np.clip(fa, 1e-4, 1 - 1e-4)), norm.ppf(np.clip(miss, 1e-4, 1 - 1e-4)),
                label=f"{run.label}{eer_text}", color=plt.get_cmap("tab10")((len(shown) - 1) % 10),
                linestyle=LINE_STYLES[(len(shown) - 1) % len(LINE_STYLES)])
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(5e-4), norm.ppf(0.6))
    ax.set_ylim(norm.ppf(5e-4), norm.ppf(0.6))
    ax.set_xlabel("false alarm rate %")
    ax.set_ylabel("miss rate %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title((f"{title}\n" if title else "") + "DET, cosine scoring (first seed of each configuration)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
