"""The enrolment's report as Markdown (``report.md``): shot groups, the deployed method and its
'unknown' threshold, closed-set accuracy, open-set DIR / OSCR by shot group, and calibrated
verification figures on the test hold-out."""

from ltspk.data.longtail import SHOT_GROUPS
from ltspk.identify.settings import REJECT_LABEL


def _f(v, digits=1):
    return "-" if v is None else f"{v:.{digits}f}"


def report_markdown(info, report):
    th = report["shot_thresholds"]
    sizes = report["shot_group_sizes"]
    lines = [f"# Enrolment: {report['n_enrolled_speakers']} speakers ({info['embedder']['kind']} embedder, "
             f"{info['embedding_dim']}-dim)", "",
             f"Shot groups by enrolled recordings: many {th['many']} ({sizes['many']} speakers), medium {th['medium']} "
             f"({sizes['medium']}), few {th['few']} ({sizes['few']}). Split sizes: "
             + ", ".join(f"{k} {v}" for k, v in report["split_sizes"].items()) + ".", ""]
    if report["too_small_to_hold_out"]:
        lines += [f"Enrolled whole, not evaluated (too few recordings to hold out): "
                  f"{', '.join(report['too_small_to_hold_out'][:20])}", ""]
    dep = info["deployed"]
    m_dep = info["methods"][dep["method"]]
    lines += [f"Deployed: **{dep['method']}** (chosen on validation accuracy), temperature {dep['temperature']:.3g}, "
              f"'unknown' when the top {REJECT_LABEL[dep['reject_by']]} < {dep['threshold']:.4g} (target false-alarm rate "
              f"{dep['target_far']:g} on {m_dep.get('n_threshold_impostor_probes', '?')} impostor probes: "
              f"{m_dep['threshold_impostors']}).", ""]
    if m_dep.get("threshold_caution"):
        lines += [f"**Caution**: {m_dep['threshold_caution']}.", ""]
    test = report.get("test")
    if not test:
        return "\n".join(lines + ["No test hold-out (test_per_speaker 0): no test figures."]) + "\n"
    lines += ["## Closed-set top-1 accuracy % on the test hold-out", "",
              "| method | setting (chosen on validation) | valid | many | medium | few | overall |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for f, r in test.items():
        m = info["methods"][f]
        par = ", ".join(f"{k}={v:g}" for k, v in m["params"].items()) or "-"
        c = r["closed_set"]
        lines.append(f"| {f} | {par} | {_f(m['valid_accuracy'])} | " + " | ".join(_f(c[g]) for g in SHOT_GROUPS)
                     + f" | {_f(c['overall'])} |")
    fars = info["settings"]["fars"]
    imp = next(iter(test.values()))["impostors"]
    lines += ["", f"## Open set on the test hold-out (impostors: {imp})", "",
              "DIR %: probes of enrolled speakers accepted and correctly identified, at the threshold where the given "
              "share of impostor probes is accepted; OSCR: area under DIR against false-alarm rate (%, at most the "
              "closed-set accuracy).", "",
              "| method | reject by | group | n | " + " | ".join(f"DIR@FAR {100 * f:g}%" for f in fars)
              + " | OSCR area | FAR % [95% interval] of n impostor probes / DIR at the deployed threshold |",
              "|---|---|---|---:|" + "---:|" * len(fars) + "---:|---|"]
    for f, r in test.items():
        o, at = r["open_set"], r["at_deployed_threshold"]
        for g in (*SHOT_GROUPS, "overall"):
            row = o.get(g)
            if row is None:
                continue
            ci = at.get("far_ci95")
            far = f"{100 * at['far']:.1f}" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}] of {at['n_impostor_probes']}"
                                              if ci else "")
            extra = f"{far} / {at['dir']:.1f}" if g == "overall" else ""
            lines.append(f"| {f} | {info['methods'][f]['reject_by']} | {g} | {row['n']} | "
                         + " | ".join(_f(row[f"dir@{x:g}"]) for x in fars) + f" | {_f(row['oscr_auc'])} | {extra} |")
    v = report["verification"]
    lines += ["", "## Verification scores, calibrated", "",
              f"Trials: each test probe against every enrolled speaker ({v['scores']}), {v['n_trials']} trials; "
              f"logistic calibration fitted on {v['dev_trials']} validation trials.", "",
              "| EER % | minDCF 0.01 | actDCF 0.01 | minDCF 0.05 | actDCF 0.05 | Cllr | min Cllr |",
              "|---:|---:|---:|---:|---:|---:|---:|",
              f"| {v['eer']:.2f} | {v['min_dcf_0.01']:.3f} | {v['act_dcf_0.01']:.3f} | {v['min_dcf_0.05']:.3f} | "
              f"{v['act_dcf_0.05']:.3f} | {v['cllr']:.3f} | {v['min_cllr']:.3f} |"]
    return "\n".join(lines) + "\n"
