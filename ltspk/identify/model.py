"""A saved enrolment: the model folder (written whole through ``ltspk.runtime.atomic.staged_folder``)
holds ``model.json`` (settings, speakers, embedder, chosen settings, calibration, thresholds),
``arrays.npz`` (embeddings and per-method weights; read with ``allow_pickle=False``) and ``report.json``
/ ``report.md``. No pickle anywhere. ``EnrolmentModel`` loads one and predicts the speaker of files,
or 'unknown'."""

from pathlib import Path

import numpy as np

from ltspk.data.audio import printable
from ltspk.data.manifest import Utterance
from ltspk.embedding.embedders import from_spec, load_embedder
from ltspk.embedding.file_cache import write_cache
from ltspk.embedding.reading import load_waveform
from ltspk.identify.methods import Scorer
from ltspk.identify.rejection import p_unknown, probabilities, reject_scores
from ltspk.identify.report import report_markdown
from ltspk.identify.settings import FAMILIES, EnrolSettings
from ltspk.runtime.atomic import read_json, staged_folder, write_json, write_text
from ltspk.runtime.errors import DataError

FORMAT, VERSION = "ltspk-enrolment", 1


def save_model(out, info, arrays, report, cache=None):
    with staged_folder(out) as tmp:
        with open(tmp / "arrays.npz", "wb") as f:
            np.savez(f, **arrays)
        write_json(tmp / "model.json", info)
        write_json(tmp / "report.json", report)
        write_text(tmp / "report.md", report_markdown(info, report))
    if cache:
        write_cache(cache, info["embedding_source"], arrays["utt_keys"], arrays["embeddings"])
    return Path(out)


class EnrolmentModel:
    """A saved enrolment: load (no pickle), predict, and the data to refit with new speakers."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.info = read_json(self.folder / "model.json")
        if self.info.get("format") != FORMAT:
            raise DataError(self.folder / "model.json", "not an ltspk enrolment model")
        if self.info.get("version") != VERSION:
            raise DataError(self.folder / "model.json", f"enrolment format version {self.info.get('version')}, this "
                                                        f"ltspk reads {VERSION}: enrol again")
        try:
            with np.load(self.folder / "arrays.npz", allow_pickle=False) as z:
                self.arrays = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise DataError(self.folder / "arrays.npz", "file not found") from None
        except (ValueError, OSError) as e:
            raise DataError(self.folder / "arrays.npz", f"unreadable ({e})") from None
        d, c = self.info["embedding_dim"], len(self.info["speakers"])
        for f in FAMILIES:
            shapes = tuple(self.arrays.get(f"{f}.{p}", np.zeros(0)).shape for p in ("mu", "W", "b"))
            if shapes != ((d,), (c, d), (c,)):
                raise DataError(self.folder / "arrays.npz", f"{f}: arrays of shape {shapes} do not fit {c} speakers "
                                                            f"x {d} dimensions")
        self.settings = EnrolSettings(**{**self.info["settings"]})
        self.speakers = list(self.info["speakers"])

    def scorer(self, method=None):
        f = method or self.info["deployed"]["method"]
        if f not in FAMILIES:
            raise DataError("method", f"{f!r}: choose one of {', '.join(FAMILIES)}")
        return Scorer(*(self.arrays[f"{f}.{p}"] for p in ("mu", "W", "b")))

    def rows(self):
        a = self.arrays
        return [Utterance(str(i), float(d), str(p), int(s), int(e), str(k)) for i, d, p, s, e, k in
                zip(a["utt_ids"], a["utt_duration"], a["utt_paths"], a["utt_start"], a["utt_stop"], a["utt_speakers"])]

    def embedder(self, override=None, device="cpu"):

        return load_embedder(override, device) if override else from_spec(self.info["embedder"], device)

    def check_embedder(self, embedder):
        """Refuse, before any file is read, an embedder other than the one of the enrolment."""
        if embedder.fingerprint() != self.info["embedder"]["fingerprint"]:
            raise DataError(self.folder, f"the embedder ({embedder.spec()}) is not the one this enrolment was made "
                                         "with (its weights or settings differ): enrol again with it")

    def check_embeddings(self, embedder, emb):
        d = self.info["embedding_dim"]
        if emb.shape[1] != d:
            raise DataError(self.folder, f"the {embedder.kind} embedder gives {emb.shape[1]}-dimensional embeddings; "
                                         f"this enrolment holds {d}-dimensional ones: use the embedder it was enrolled with")

    def predict(self, paths, embedder, top_k=3, method=None, prior_enrolled=0.5):
        """Per file: {file, speaker | 'unknown', p_unknown, top: [[speaker, probability], ...],
        top_if_enrolled, score, threshold} or {file, error}.

        ``p_unknown`` is the probability that the caller is not enrolled (``unknown_calibration``, fitted
        on the validation probes, at the prior ``prior_enrolled`` that a caller is enrolled; None for a
        model enrolled before it was fitted); ``top`` gives P(that speaker) = (1 - p_unknown) x P(that
        speaker | enrolled), so ``top`` and ``p_unknown`` sum to at most 1; ``top_if_enrolled`` the
        closed-set P(speaker | enrolled), which says nothing of whether the caller is enrolled. The
        decision ('unknown' below the threshold) is the threshold's, set for the target false-alarm rate."""
        dep = dict(self.info["deployed"])
        if method and method not in FAMILIES:
            raise DataError("method", f"{method!r}: choose one of {', '.join(FAMILIES)}")
        if method and method != dep["method"]:
            dep = {"method": method, **{k: self.info["methods"][method][k] for k in ("temperature", "reject_by",
                                                                                     "threshold")}}
        calibration = self.info["methods"][dep["method"]].get("unknown_calibration")
        self.check_embedder(embedder)

        scorer, results, wavs = self.scorer(dep["method"]), [], []
        for p in paths:
            try:
                wavs.append(load_waveform(p, embedder, max_seconds=self.settings.max_seconds))
                results.append({"file": printable(p)})
            except DataError as e:
                results.append({"file": printable(p), "error": e.problem})
        ok = [r for r in results if "error" not in r]
        if not ok:
            return results
        emb = np.concatenate([embedder.embed(w[None]) for w in wavs])
        self.check_embeddings(embedder, emb)
        z = scorer.logits(emb)
        prob = probabilities(z, dep["temperature"])
        score = reject_scores(z, dep["temperature"], dep["reject_by"])
        unknown = p_unknown(calibration, score, prior_enrolled) if calibration else [None] * len(ok)
        for r, pr, s, pu in zip(ok, prob, score, unknown):
            top = np.argsort(-pr, kind="stable")[:top_k]
            known = 1.0 if pu is None else 1.0 - float(pu)
            r.update(speaker=self.speakers[top[0]] if s >= dep["threshold"] else "unknown",
                     p_unknown=None if pu is None else float(pu),
                     top=[[self.speakers[i], known * float(pr[i])] for i in top],
                     top_if_enrolled=[[self.speakers[i], float(pr[i])] for i in top], score=float(s),
                     reject_by=dep["reject_by"], threshold=dep["threshold"], prior_enrolled=prior_enrolled)
        return results
