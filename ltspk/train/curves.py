"""Training curves of a run, read from its ``train_log.txt``: loss, validation error by shot group and
the learning rate per epoch (``training_curves.png``)."""

from pathlib import Path

import numpy as np

from ltspk.runtime.figures import pyplot, save_figure


def read_train_log(path):
    """Per-epoch figures of SpeechBrain's ``train_log.txt`` (``FileTrainLogger``: ``epoch: 1, lr: 2.00e-03 -
    train loss: 10.06 - valid loss: 9.12, valid error: 50.00``) as ``{epoch: {"lr": .., "train loss": ..}}``;
    a later line of the same epoch (a resumed run) replaces the earlier one."""
    epochs = {}
    for line in Path(path).read_text().splitlines():
        stats = {}
        for part in line.split(" - "):
            for item in part.split(", "):
                key, sep, value = item.partition(": ")
                try:
                    stats[key.strip()] = float(value)
                except ValueError:
                    continue
        if "epoch" in stats:
            epochs[int(stats.pop("epoch"))] = stats
    return dict(sorted(epochs.items()))


def plot_training_curves(log_path, path, title=""):
    """Training curves of a run from its ``train_log.txt``: training and validation loss, validation
    error % (and accuracy by shot group when logged) and the learning rate, per epoch. Returns the path."""
    plt = pyplot()
    epochs = read_train_log(log_path)
    if not epochs:
        raise ValueError(f"{log_path}: no epoch line to plot")
    x = list(epochs)

    def series(key):
        return [epochs[e].get(key, np.nan) for e in x]

    def has(key):
        return any(key in s for s in epochs.values())

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    ax = axes[0]
    ax.plot(x, series("train loss"), marker="o", label="training")
    if has("valid loss"):
        ax.plot(x, series("valid loss"), marker="s", label="validation")
    ax.set(xlabel="epoch", ylabel="loss (training objective, nats)", title="loss")
    ax.legend()
    ax = axes[1]
    if has("valid error"):
        ax.plot(x, series("valid error"), marker="o", color="k", label="error (all)")
        for group, style in (("many", "--"), ("medium", "-."), ("few", ":")):
            if has(f"valid acc_{group}"):
                ax.plot(x, [100.0 - v for v in series(f"valid acc_{group}")], linestyle=style, label=f"error ({group}-shot)")
        ax.set(ylim=(-3, 103))
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no validation during training", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="epoch", ylabel="speaker-ID error on validation (%)", title="validation error")
    ax = axes[2]
    ax.plot(x, series("lr"), marker="o", color="tab:green")
    ax.set(xlabel="epoch", ylabel="learning rate (of the epoch)", title="learning rate")
    if all(v > 0 for v in series("lr") if not np.isnan(v)):
        ax.set_yscale("log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title or "training curves")
    fig.tight_layout()
    return save_figure(fig, path)
