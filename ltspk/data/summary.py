"""Text and plot summaries of a prepared corpus's long-tailed speaker distribution."""

from pathlib import Path

import numpy as np

from ltspk.runtime.atomic import atomic_path, read_json
from ltspk.runtime.errors import DataError

GROUP_COLOURS = {"many": "#1f77b4", "medium": "#ff7f0e", "few": "#d62728"}


def load_counts(path):
    info = read_json(path)
    for key in ("counts", "shot_groups", "shot_thresholds"):
        if key not in info:
            raise DataError(path, f"not a counts.json written by ltspk preparation (no {key!r})")
    return info


def summary_text(info):
    counts = np.array(list(info["counts"].values()), dtype=float)
    th = info["shot_thresholds"]
    lines = [
        f"corpus: {info.get('corpus', '?')}",
        f"speakers: {len(counts)}   training utterances: {int(counts.sum())}   "
        f"speaker-ID test utterances: {info.get('n_spkid_test_utterances', 0)}   trials: {info.get('n_trials', 0)}",
        f"utterances per speaker: min {counts.min():g}  median {np.median(counts):g}  "
        f"mean {counts.mean():.1f}  max {counts.max():g}  imbalance (max/min) {counts.max() / counts.min():.1f}",
        "shot groups (training utterances):",
    ]
    groups = info["shot_groups"]
    for g in ("many", "medium", "few"):
        spk = [s for s, v in groups.items() if v == g]
        n = sum(info["counts"][s] for s in spk)
        lines.append(f"  {g:<7} {th[g]:<22} {len(spk):>6} speakers {n:>9} utterances")
    concat = info.get("concat")
    if concat:
        lines.append(f"short clips concatenated (under {concat['min_seconds']:g} s, per speaker and genre): "
                     f"{concat['clips_concatenated']} of {concat['short_clips']} short clips -> "
                     f"{concat['utterances_made']} utterances ({concat['source_clips']} clips -> "
                     f"{concat['utterances']} before hold-outs; {concat['short_left']} still short)")
    target = info.get("imbalance_factor_target")
    if target:
        lines.append(f"imbalance (max/min training utterances): target {target:g}, reached {info['imbalance_factor']:.3g}")
    lines += holdout_lines(info.get("holdout"))
    if info.get("too_small_to_hold_out"):
        lines.append(f"too small to hold out from (kept whole in training): {len(info['too_small_to_hold_out'])} speaker(s)")
    if info.get("dropped_below_min_utterances"):
        lines.append(f"dropped below the minimum utterance count: {len(info['dropped_below_min_utterances'])} speaker(s)")
    if info.get("n_bad_files"):
        lines.append(f"bad audio files skipped: {info['n_bad_files']} (see bad_files.txt)")
    lines += [f"WARNING: {w}" for w in info.get("warnings", [])]
    return "\n".join(lines)


def holdout_lines(holdout):
    """The speaker-ID hold-outs: size per speaker, and how many recordings are cross-session."""
    if not holdout:
        return []
    lines = [f"speaker-ID hold-outs by {holdout['by']} (cross-session: from sessions the speaker's training never saw):"]
    for name in ("spkid_test", "spkid_valid"):
        h = holdout.get(name)
        if not h or not h.get("utterances"):
            continue
        auto = " (auto)" if holdout.get("auto", {}).get(name) else ""
        text = (f"  {name:<11} {h['per_speaker']} a speaker{auto}: {h['utterances']} recordings, "
                f"{h['cross_session']} cross-session, {h['same_session']} same-session, {h['session_unknown']} session unknown")
        fallback = h.get("speakers_fallback") or {}
        if fallback:
            text += "; random recordings for " + ", ".join(f"{v['speakers']} speaker(s): {why}" for why, v in fallback.items())
        if h.get("speakers_holding_out_one"):
            text += f"; {len(h['speakers_holding_out_one'])} small speaker(s) hold out one"
        if h.get("recordings_unused"):
            text += f"; {h['recordings_unused']} recordings of held-out sessions in neither split"
        lines.append(text)
    return lines


def plot_counts(info, path, title=None):
    """Utterances per speaker, sorted, log scale, bars coloured by shot group."""
    from ltspk.runtime.figures import pyplot

    plt = pyplot()

    items = sorted(info["counts"].items(), key=lambda kv: -kv[1])
    values = np.array([n for _, n in items])
    colours = [GROUP_COLOURS[info["shot_groups"][s]] for s, _ in items]
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(np.arange(len(values)), values, width=1.0, color=colours, linewidth=0)
    ax.set_yscale("log")
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # 1, 2, 5, 10, 20, 50, ... as plain numbers
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("speaker rank")
    ax.set_ylabel("training utterances (log)")
    th = info["shot_thresholds"]
    for y, label in ((th["many_above"], "many / medium"), (th["few_below"], "medium / few")):
        ax.axhline(y, color="grey", ls="--", lw=0.8)
        ax.text(len(values) * 0.99, y, label, ha="right", va="bottom", fontsize=8, color="grey")
    from matplotlib.patches import Patch

    sizes = info.get("shot_group_sizes", {})
    from ltspk.data.longtail import ShotThresholds

    th = {**th, **ShotThresholds(th["many_above"], th["few_below"]).as_dict()}  # rounded as today's preparation writes
    ax.legend(handles=[Patch(color=c, label=f"{g} ({sizes.get(g, '?')} spk, {th[g]})") for g, c in GROUP_COLOURS.items()],
              fontsize=8)
    target = info.get("imbalance_factor_target")
    reached = values.max() / values.min()
    ax.set_title(title or f"{info.get('corpus', '')}: {len(values)} training speakers, imbalance "
                 + (f"target {target:g}, reached {reached:.3g}" if target else f"{reached:.3g}"))
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
