"""One results record per run: typed records written per stage, one function that rebuilds
``results.json`` and ``results.md`` from them.

Each stage (``evaluate``, ``stage2``) writes ``<run>/<stage folder>/records.json``:

    {"schema_version": 2, "stage": "evaluate", "info": {...}, "failures": {...},
     "records": [Record, ...]}

A ``Record`` is one figure set: ``task`` (``speaker_id`` | ``verification`` | ``diagnostic``), ``family``
(``plain``, ``posthoc_la``, ``tde``, ``cRT``, ``tau_norm``, ``LWS``, ``NCM``, ``cosine``,
``tde_embeddings``, ``asnorm``), ``params`` (e.g. ``{"posthoc_tau": 1.0}``), ``split``
(``spkid_test``, ``spkid_valid``, ``trials``), ``metrics`` and ``role``:

- ``headline``: reported. For a tunable family it is the test figure at the setting chosen on
  the validation split, and ``chosen_on`` says where and by what.
- ``validation``: the figure on ``spkid_valid`` for one setting of a sweep (what the choice saw).
- ``diagnostic``: the test figure for every other setting of a sweep, shown only as such.

``results.json`` = ``{"schema_version", "run": evaluate's info, "stages": {stage: info},
"failures", "stale", "records": all records}``; it is a view, rebuilt whole by ``rebuild_results``
after every stage, so re-evaluating never loses stage 2 and stage 2 shows in ``results.md``, as
long as it was made from the model evaluated (``info.model_sha256``): stage 2 of an older model
(trained on since) is left out and named in ``stale`` and in ``results.md``.
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ltspk.runtime.atomic import write_json, write_text
from ltspk.runtime.errors import DataError

SCHEMA_VERSION = 2
STAGE_FOLDERS = {"evaluate": "evaluation", "stage2": "stage2"}
GROUPS = ("many", "medium", "few", "overall")
ROLES = ("headline", "validation", "diagnostic")


@dataclass
class Record:
    stage: str
    task: str
    family: str
    split: str
    metrics: dict
    params: dict = field(default_factory=dict)
    role: str = "headline"
    chosen_on: dict | None = None

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {self.role!r}")

    @property
    def key(self):
        """A stable identifier of the inference variant: family and its parameters."""
        return self.family + "".join(f" {k}={v:g}" for k, v in sorted(self.params.items()))

    @property
    def label(self):
        text = self.key
        if self.chosen_on:
            text += f" (chosen on {self.chosen_on['split']})"
        elif self.role == "diagnostic":
            text += " (diagnostic: not chosen on validation)"
        return text


def record_from_dict(d, source="records"):
    try:
        return Record(**d)
    except TypeError as e:
        raise DataError(source, f"not an ltspk record ({e})") from None


def stage_path(run_dir, stage):
    return Path(run_dir) / STAGE_FOLDERS[stage] / "records.json"


def stage_document(stage, records, info=None, failures=None):
    return {"schema_version": SCHEMA_VERSION, "stage": stage, "info": info or {}, "failures": failures or {},
            "records": [asdict(r) for r in records]}


def read_stage(run_dir, stage):
    path = stage_path(run_dir, stage)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e})") from None
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise DataError(path, f"results schema {doc.get('schema_version')!r}, this ltspk reads {SCHEMA_VERSION}: "
                              "evaluate the run again")
    doc["records"] = [record_from_dict(r, path) for r in doc.get("records", [])]
    return doc


def collect(run_dir):
    """Every stage's records of a run, as one dict (the content of results.json). A later stage made
    from another model than the evaluation's (``info.model_sha256``: stage 2 of a model trained on
    since) is left out of ``records`` and named in ``stale``."""
    stages = {s: read_stage(run_dir, s) for s in STAGE_FOLDERS}
    stages = {s: d for s, d in stages.items() if d is not None}
    if "evaluate" not in stages:
        raise DataError(stage_path(run_dir, "evaluate"), "no evaluation records: train and evaluate this run first")
    model = stages["evaluate"]["info"].get("model_sha256")
    stale = {s: _stale_text(s, d, model) for s, d in stages.items()
             if s != "evaluate" and d["info"].get("model_sha256") != model}
    return {"schema_version": SCHEMA_VERSION, "run": stages["evaluate"]["info"],
            "stages": {s: d["info"] for s, d in stages.items()},
            "failures": {f"{s}: {k}": v for s, d in stages.items() for k, v in d.get("failures", {}).items()},
            "stale": stale,
            "records": [r for s, d in stages.items() if s not in stale for r in d["records"]]}


def _stale_text(stage, doc, model):
    def short(sha):
        return sha[:12] if sha else "unrecorded"

    again = {"stage2": "recipes/retrain_classifier.py"}.get(stage, f"the {stage} stage")
    return (f"made from model {short(doc['info'].get('model_sha256'))}, not the evaluated model {short(model)}: its "
            f"{len(doc['records'])} record(s) are left out; run {again} on this run again")


def rebuild_results(run_dir):
    """Write ``results.json`` and ``results.md`` of a run from its stage records."""
    run_dir = Path(run_dir)
    res = collect(run_dir)
    write_json(run_dir / "results.json", {**res, "records": [asdict(r) for r in res["records"]]})
    write_text(run_dir / "results.md", results_table(res))
    return res


def _fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def _checkpoint_lines(ck):
    """What the evaluated model is, when it is not simply the last epoch of the run as planned."""
    if not ck:
        return []
    out = []
    planned, done = ck.get("epochs_planned"), ck.get("epochs_completed")
    if ck.get("mid_epoch"):
        out.append(f"Model: a MID-EPOCH checkpoint (epoch {ck.get('epoch')} in progress, {done} of {planned} planned "
                   f"epochs done, optimizer step {ck.get('optimizer_step')}): training did not finish")
    elif planned is not None and done is not None and done < planned:
        out.append(f"Model: the checkpoint of epoch {done} of {planned} planned (optimizer step {ck.get('optimizer_step')})")
    for ext in ck.get("extended") or []:
        old, new = ext.get("number_of_epochs", [None, None])
        out.append(f"number_of_epochs extended from {old} to {new} after epoch {ext.get('after_epoch')} (--extend_epochs)")
    return out + [""] if out else []


def results_table(res):
    run = res["run"]
    tag = " (SYNTHETIC corpus)" if run.get("synthetic") else ""
    lines = [f"## {run.get('experiment', '')} (seed {run.get('seed')}): {run.get('head_label', run.get('head'))} "
             f"on {run.get('corpus')}{tag}", ""]
    lines += _checkpoint_lines(run.get("checkpoint"))
    recs = [r for r in res["records"] if r.role != "validation"]
    ver = [r for r in recs if r.task == "verification"]
    if ver:
        lines += ["| verification | trials | EER % | minDCF 0.01 | minDCF 0.05 |", "|---|---:|---:|---:|---:|"]
        for r in ver:
            m = r.metrics
            lines.append(f"| {r.label} | {m.get('n_trials')} | {_fmt(m.get('eer'))} | {_fmt(m.get('min_dcf_0.01'), 3)} "
                         f"| {_fmt(m.get('min_dcf_0.05'), 3)} |")
        lines.append("")
    sid = [r for r in recs if r.task == "speaker_id"]
    if sid:
        th = run.get("shot_thresholds") or {}
        lines += [f"Speaker-ID top-1 accuracy % on {sid[0].split} (many: {th.get('many')}, medium: {th.get('medium')}, "
                  f"few: {th.get('few')} training utterances); settings of tunable modes chosen on spkid_valid", "",
                  "| stage | inference | many | medium | few | overall |", "|---|---|---:|---:|---:|---:|"]
        for r in sorted(sid, key=lambda r: r.role != "headline"):
            lines.append(f"| {r.stage} | {r.label} | " + " | ".join(_fmt(r.metrics.get(g)) for g in GROUPS) + " |")
        lines.append("")
    diag = [r for r in recs if r.task == "diagnostic"]
    if diag:
        lines += ["Diagnostics: mean [quartiles] by shot group", "",
                  "| diagnostic | split | many | medium | few | overall | rule of thumb |", "|---|---|---|---|---|---|---|"]
        for r in diag:
            cells = [(f"{m['mean']:.3f} [{m['q25']:.3f}, {m['q75']:.3f}]" if (m := r.metrics.get(g)) else "-")
                     for g in GROUPS]
            rule = ", ".join(f"{k}={'-' if v is None else f'{v:.2f}'}" for k, v in (r.metrics.get("suggested") or {}).items())
            lines.append(f"| {r.family} | {r.split} | " + " | ".join(cells) + f" | {rule} |")
        lines.append("")
    for name, text in res.get("failures", {}).items():
        lines.append(f"FAILED {name}: {text}")
    for name, text in res.get("stale", {}).items():
        lines.append(f"STALE {name}: {text}")
    return "\n".join(lines) + "\n"


def headline_table(res):
    """The headline of a run, what a recipe prints when it ends: its title, what the model is when it is not
    the last epoch as planned, the verification EER / minDCF and the speaker-ID accuracy by shot group of
    plain inference and of each tunable inference at the setting chosen on validation (``headline`` records
    only; every validation and diagnostic record stays in results.md / results.json), then any failure."""
    heads = [r for r in res["records"] if r.role == "headline" and r.task in ("verification", "speaker_id")]
    return results_table({**res, "records": heads})


def summary_line(res):
    """One line in WeSpeaker's style: ``folder_aam seed 1: EER 18.45% minDCF(0.01) 0.915 | speaker ID overall
    92.6% few 82.9% (plain)`` (the first verification headline, cosine scoring first, and plain speaker ID)."""
    run = res["run"]
    heads = [r for r in res["records"] if r.role == "headline"]
    parts = []
    ver = sorted((r for r in heads if r.task == "verification"), key=lambda r: r.family != "cosine")
    if ver:
        m = ver[0].metrics
        ptarget = min((k[len("min_dcf_"):] for k in m if k.startswith("min_dcf_")), key=float, default=None)
        dcf = f" minDCF({ptarget}) {_fmt(m.get(f'min_dcf_{ptarget}'), 3)}" if ptarget else ""
        family = "" if ver[0].family == "cosine" else f" ({ver[0].label})"
        parts.append(f"EER {_fmt(m.get('eer'))}%{dcf}{family}")
    plain = [r for r in heads if r.task == "speaker_id" and r.family == "plain"]
    if plain:
        m = plain[0].metrics
        groups = " ".join(f"{g} {_fmt(m.get(g), 1)}%" for g in ("overall", "few") if m.get(g) is not None)
        parts.append(f"speaker ID {groups} (plain{'' if plain[0].stage == 'evaluate' else ', ' + plain[0].stage})")
    return f"{run.get('experiment', '')} seed {run.get('seed')}: " + (" | ".join(parts) or "no headline result")


def headline(res):
    """What a recipe prints when it ends, once: ``headline_table`` and ``summary_line``."""
    return headline_table(res) + "\n" + summary_line(res)


def choose_on_validation(valid_scores, neutral=0.0):
    """The setting with the best validation score; ties go to the least adjustment (the
    setting nearest ``neutral``, the value that equals plain inference)."""
    if not valid_scores:
        raise ValueError("nothing to choose from")
    return max(valid_scores, key=lambda p: (valid_scores[p], -abs(p - neutral)))


def sweep_records(stage, family, param, grid, valid_metric, test_metrics, neutral=0.0, valid_split="spkid_valid"):
    """Records of a tunable family: one ``validation`` record per setting, the test figure at
    the setting chosen on validation as ``headline``, every other test figure ``diagnostic``.

    ``valid_metric(value) -> metrics dict`` (its ``overall`` is what the choice maximises);
    ``test_metrics(value) -> metrics dict``."""
    valid = {float(v): valid_metric(v) for v in grid}
    chosen = choose_on_validation({v: m["overall"] for v, m in valid.items()}, neutral)
    out = [Record(stage, "speaker_id", family, valid_split, m, {param: v}, "validation") for v, m in valid.items()]
    for v in valid:
        on = {"split": valid_split, "metric": "overall accuracy", "value": valid[v]["overall"]} if v == chosen else None
        out.append(Record(stage, "speaker_id", family, "spkid_test", test_metrics(v), {param: v},
                          "headline" if v == chosen else "diagnostic", on))
    return out, chosen


def find(records, task, family, role="headline", **params):
    """The records of one task and family (and role; ``role=None`` for any), matching ``params``."""
    return [r for r in records if r.task == task and r.family == family and (role is None or r.role == role)
            and all(r.params.get(k) == v for k, v in params.items())]
