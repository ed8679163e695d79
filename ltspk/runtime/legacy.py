"""Module paths of ltspk before its packages by role, so that run folders written then still load.

A run folder's ``hyperparams.yaml`` names ltspk's classes and functions by module path
(``!new:ltspk.schedulers.EpochCyclicLRScheduler``), and its checkpoints' training settings name
the classes of its schedule and optimiser. ``modern_paths`` rewrites the old paths to today's
(``ltspk.train.schedulers.EpochCyclicLRScheduler``) when a YAML file or a settings record is read,
so evaluating, re-training stage 2, resuming or identifying with such a run works as it did.
"""

import re

# module (below ltspk.) -> its module now
RENAMED = {
    "errors": "runtime.errors", "atomic": "runtime.atomic", "runlock": "runtime.runlock", "rng": "runtime.rng",
    "fingerprint": "runtime.fingerprint", "checkpoints": "runtime.checkpoints", "averaging": "runtime.averaging",
    "argtypes": "cli.argtypes", "embeddings_io": "embedding.tables", "embedders": "embedding.embedders",
    "embed": "embedding.cache", "metrics": "evaluation.metrics", "scoring": "evaluation.scoring",
    "calibration": "evaluation.calibration", "openset": "evaluation.openset", "records": "evaluation.records",
    "evaluate": "evaluation.evaluate", "decoupled": "longtail.decoupled", "retrain": "longtail.stage2",
    "brain": "train.brain", "experiment": "train.experiment", "hparams": "train.hparams",
    "schedulers": "train.schedulers", "losses": "train.losses", "augment": "train.augment",
    "pretrained": "train.pretrained", "export": "train.export", "enrolment": "identify",
    "comparison": "compare.comparison", "report": "compare.report", "plots": "compare.plots",
    "stats": "compare.stats", "tde_study": "compare.tde_study", "recommend": "compare.recommend",
}
_OLD = re.compile(r"\bltspk\.(" + "|".join(sorted(map(re.escape, RENAMED), key=len, reverse=True)) + r")(?!\w)")


def modern_paths(value):
    """``value`` (a text, or a JSON-like structure of them) with every old ltspk module path replaced
    by today's; anything else unchanged."""
    if isinstance(value, str):
        return _OLD.sub(lambda m: "ltspk." + RENAMED[m.group(1)], value)
    if isinstance(value, dict):
        return {k: modern_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [modern_paths(v) for v in value]
    return value
