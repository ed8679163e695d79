"""Figures written by ltspk: matplotlib on the Agg backend, PNGs written atomically."""

from pathlib import Path

from ltspk.runtime.atomic import atomic_path


def pyplot():
    """matplotlib on the Agg backend, its DEBUG logging (font manager) kept out of run logs."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path):
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)
