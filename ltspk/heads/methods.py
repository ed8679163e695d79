"""The registry of long-tail methods: every way ltspk corrects for a long tail, declared once
where it is implemented, and read by evaluation, stage 2, identification and the hparams check.

A method is registered by the module that implements it (``register``):

- ``name``: its family in the results records (``posthoc_la``, ``tde``, ``tau_norm``, ``cRT``, ...);
- ``kind``: where it acts: ``inference`` (a head's logits at evaluation), ``embedding`` (an
  embedding transform for verification), ``stage2`` (a classifier re-fitted on frozen embeddings),
  ``enrolment`` (identification of a user's speakers only);
- ``tunable``: its one setting chosen on validation (``Tunable``: the name in records, the hparams
  key holding its grid, the default grid, the neutral value that equals plain inference), if any;
- ``options_key`` / ``options_of``: an hparams key holding keyword options, and the function
  that takes them (how the method is applied: ``crt_options`` -> ``ltspk.longtail.decoupled.crt``);
  ``data_args`` are that function's arguments that are data, not options.

The hparams keys a file may set for these methods are derived from the registry
(``hparams_keys``, ``nested_options``): a new head or method adds its hparams key by registering,
with no list to edit elsewhere (``docs/new_head.md``). ``registered`` imports every module of the
packages named, so that a method is known wherever it is declared.
"""

import importlib
import inspect
import pkgutil
from dataclasses import dataclass

KINDS = ("inference", "embedding", "stage2", "enrolment")


@dataclass(frozen=True)
class Tunable:
    """An inference family with one setting to choose on validation.

    ``param`` names the setting in records and in ``inference_logits``; ``hparam`` is the
    hparams key that overrides ``grid``; ``neutral`` is the value that equals plain inference
    (validation ties go to the value nearest it)."""

    param: str
    hparam: str
    grid: tuple
    neutral: float = 0.0


@dataclass(frozen=True)
class Method:
    name: str
    kind: str
    summary: str
    tunable: Tunable = None
    options_key: str = None
    options_of: object = None
    data_args: tuple = ()

    def options(self):
        """The keyword options ``options_key`` may hold: ``options_of``'s arguments but the data."""
        if self.options_of is None:
            return set()
        return {n for n, p in inspect.signature(self.options_of).parameters.items()
                if n not in self.data_args and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


METHODS = {}  # (kind, name) -> Method, in the order of registration


def register(method):
    """Add ``method`` to the registry (once: the same declaration again is a no-op; another one
    under a registered kind and name, or a hparams key already taken, is an error). Returns it."""
    if method.kind not in KINDS:
        raise ValueError(f"method {method.name}: kind {method.kind!r} is not one of {KINDS}")
    key = (method.kind, method.name)
    old = METHODS.get(key)
    if old is not None and old != method:
        raise ValueError(f"two {method.kind} methods are named {method.name!r}")
    taken = {k: m for m in METHODS.values() if m.kind != "enrolment" and m != method for k in _keys(m)}
    clash = [k for k in _keys(method) if k in taken] if method.kind != "enrolment" else []
    if clash:
        raise ValueError(f"method {method.name}: hparams key {clash[0]!r} is {taken[clash[0]].name}'s already")
    METHODS[key] = method
    return method


def _keys(method):
    return [k for k in (method.tunable.hparam if method.tunable else None, method.options_key) if k]


def registered(*packages):
    """The registered methods, after importing every module of ``packages`` (dotted names)."""
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.iter_modules(package.__path__, prefix=f"{name}."):
            importlib.import_module(info.name)
    return list(METHODS.values())


def hparams_keys(methods):
    """The hparams keys of ``methods``: tunable grids and option dicts (enrolment's are command-line
    options of identification, not hparams keys)."""
    return {k for m in methods if m.kind != "enrolment" for k in _keys(m)}


def nested_options(methods):
    """{options_key: the options it may hold} of ``methods``."""
    return {m.options_key: m.options for m in methods if m.options_key and m.kind != "enrolment"}
