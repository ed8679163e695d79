"""One interface for every speaker embedder: an ltspk run, a SpeechBrain model folder, resemblyzer.

An ``Embedder`` turns a padded batch of waveforms at its ``sample_rate`` (``[B, T]`` float
tensor, ``lens`` relative lengths as SpeechBrain passes them) into float32 embeddings
``[B, D]`` (``embed``), and names what it is with ``fingerprint()`` (a SHA-256 of its weights
and the settings that shape an embedding), so that cached embeddings and saved enrolments
are never reused with another model. ``spec()`` is the JSON that ``from_spec`` rebuilds it from.

Sources (``load_embedder``):

- ``run:DIR`` (or a DIR with ``hyperparams.yaml`` and ``save/``): an ltspk training run. Only
  the embedding modules of its ``hyperparams.yaml`` are built (``compute_features``,
  ``mean_var_norm``, ``embedding_model``) and restored from the checkpoint its evaluation uses
  (``run_checkpoints``: the mean of the last ``ckpt_average_last`` epochs, or the best by
  ``ckpt_min_key`` / ``ckpt_max_key``, or the latest).
- ``speechbrain:DIR`` (or a DIR with ``hyperparams.yaml`` and ``embedding_model.ckpt``): a
  SpeechBrain model folder on disk in the layout of ``spkrec-ecapa-voxceleb`` (ltspk's own
  export is one), loaded with ``EncoderClassifier.from_hparams(source=DIR, savedir=DIR)``
  and used through ``encode_batch`` (``normalize=False`` unless ``normalize`` is set).
  Nothing is fetched from a model hub: DIR must be a folder.
- ``resemblyzer``: the pretrained encoder shipped inside the ``resemblyzer`` package
  (``pip install ltspk[identify-resemblyzer]``), 16 kHz, 256-dim; each utterance goes
  through resemblyzer's own ``preprocess_wav`` (volume normalisation, long-silence trimming).

Both YAML-based sources run a YAML file, which is code (hyperpyyaml builds objects): load
only folders from a trusted source. Checkpoints are read with ``torch.load``'s default
``weights_only=True``.
"""

import hashlib
import io
import json
import logging
from pathlib import Path

import numpy as np
import torch

from ltspk.runtime.averaging import average_into
from ltspk.runtime.checkpoint_policy import CheckpointPolicy
from ltspk.runtime.checkpoints import AtomicCheckpointer
from ltspk.runtime.errors import DataError, HparamsError
from ltspk.runtime.legacy import modern_paths

log = logging.getLogger(__name__)
EMBEDDING_MODULES = ("compute_features", "mean_var_norm", "embedding_model")
SB_REQUIRED = ("hyperparams.yaml", "embedding_model.ckpt")
SOURCE_PREFIXES = ("run:", "speechbrain:")


def _digest_files(paths, extra=None):
    digest = hashlib.sha256()
    for p in paths:
        digest.update(Path(p).name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    if extra is not None:
        digest.update(json.dumps(extra, sort_keys=True).encode())
    return digest.hexdigest()


def unwrap(module):
    """The module inside a DDP / DataParallel wrapper."""
    return getattr(module, "module", module)


def model_fingerprint(brain):
    """SHA-256 of every tensor of the modules that make an embedding (features, normaliser,
    embedder): what the embeddings came from, whichever checkpoint or process holds it."""
    digest = hashlib.sha256()
    for name in ("compute_features", "mean_var_norm", "embedding_model"):
        module = unwrap(brain.modules[name])
        for key, t in sorted(module.state_dict().items()):
            if torch.is_tensor(t):
                digest.update(f"{name}.{key}{tuple(t.shape)}{t.dtype}".encode())
                digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()



class Embedder:
    """Base class. Subclasses set ``kind``, ``sample_rate`` and implement ``_embed`` and ``fingerprint``."""

    kind = "?"
    sample_rate = 16000
    min_seconds = 0.1  # shorter audio is refused with the file's name (an embedder needs some frames)

    def embed(self, wavs, lens=None):
        """float32 numpy ``[B, D]`` from ``wavs`` ``[B, T]`` (or ``[T]``) at ``sample_rate``;
        ``lens`` are lengths relative to ``T`` (1.0 = unpadded)."""
        wavs = torch.as_tensor(wavs, dtype=torch.float32)
        if wavs.ndim == 1:
            wavs = wavs[None]
        if wavs.ndim != 2:
            raise ValueError(f"expected a [batch, time] waveform tensor, got shape {tuple(wavs.shape)}")
        lens = torch.ones(wavs.shape[0]) if lens is None else torch.as_tensor(lens, dtype=torch.float32)
        with torch.inference_mode():
            out = self._embed(wavs, lens)
        out = np.asarray(torch.as_tensor(out).float().cpu().reshape(wavs.shape[0], -1).numpy(), dtype=np.float32)
        if not np.isfinite(out).all():
            raise ValueError(f"{self.kind} embedder returned NaN or infinite values")
        return out

    def _embed(self, wavs, lens):
        raise NotImplementedError

    def fingerprint(self):
        raise NotImplementedError

    def spec(self):
        raise NotImplementedError

    def describe(self):
        return {**self.spec(), "sample_rate": self.sample_rate, "fingerprint": self.fingerprint()}


class ModuleEmbedder(Embedder):
    """Fbank -> mean/var norm -> embedder, as ``SpeakerBrain.embed`` and ``EncoderClassifier.encode_batch``:
    the embedder of a run in memory (``Experiment.embedder``) and of a run folder (``RunEmbedder``).
    DDP wrappers are looked through: one process embeds."""

    kind = "modules"

    def __init__(self, modules, device="cpu"):
        self.device = torch.device(device)
        self.modules = {k: unwrap(modules[k]).to(self.device).eval() for k in EMBEDDING_MODULES}
        self._fp = None

    def _embed(self, wavs, lens):
        wavs, lens = wavs.to(self.device), lens.to(self.device)
        feats = self.modules["compute_features"](wavs)
        feats = self.modules["mean_var_norm"](feats, lens)
        return self.modules["embedding_model"](feats, lens)

    def fingerprint(self):
        if self._fp is None:
            from types import SimpleNamespace

            self._fp = model_fingerprint(SimpleNamespace(modules=self.modules))
        return self._fp


def _resolved_doc(yaml_text, source):
    """A training or model YAML, references resolved, as a round-trip document (nothing built)."""
    from hyperpyyaml import resolve_references
    from ruamel.yaml import YAML

    try:
        return YAML().load(resolve_references(yaml_text, {}).getvalue()) or {}
    except Exception as e:  # noqa: BLE001 (any YAML error: name the file)
        raise DataError(source, f"cannot read the YAML ({type(e).__name__}: {e})") from None


def _embedding_modules_yaml(yaml_text, source):
    """The YAML of only the embedding modules (and sample_rate) of a training or model YAML,
    references resolved: building it runs nothing else the file declares."""
    from ruamel.yaml import YAML

    doc = _resolved_doc(yaml_text, source)
    missing = [k for k in EMBEDDING_MODULES if k not in (doc or {})]
    if missing:
        raise DataError(source, f"the YAML lacks {missing}: not an ltspk run or a speaker model")
    y, buf = YAML(), io.StringIO()
    y.dump({k: doc[k] for k in EMBEDDING_MODULES}, buf)
    return buf.getvalue(), int(doc.get("sample_rate", 16000))


def source_kind(source):
    """What a folder source is: (``"run"`` or ``"speechbrain"``, the folder). ``run:DIR`` and
    ``speechbrain:DIR`` say it; otherwise the folder's layout does (``embedding_model.ckpt``: a
    SpeechBrain model folder; ``hyperparams.yaml`` + ``save/``: an ltspk run), and a folder that is
    neither, or none, counts as a SpeechBrain model folder (whose check names what it lacks).
    Identification (``load_embedder``) and fine-tuning (``ltspk.train.pretrained``) read sources this way."""
    source = str(source)
    for prefix in SOURCE_PREFIXES:
        if source.startswith(prefix):
            return prefix[:-1], Path(source[len(prefix):])
    path = Path(source)
    if (path / "embedding_model.ckpt").is_file():
        return "speechbrain", path
    if (path / "save").is_dir() and (path / "hyperparams.yaml").is_file():
        return "run", path
    return "speechbrain", path


def missing_model_files(folder):
    """The files of a SpeechBrain model folder (``SB_REQUIRED``) that ``folder`` lacks."""
    return [f for f in SB_REQUIRED if not (Path(folder) / f).is_file()]


def run_checkpoints(run_dir):
    """The checkpoint(s) an ltspk run's evaluation takes its model from, chosen as
    ``Experiment.recover`` chooses them from the run's ``hyperparams.yaml`` (read, nothing built):
    the last ``ckpt_average_last`` epoch checkpoints (to average) when that is > 1, else the best by
    ``ckpt_min_key`` / ``ckpt_max_key``, else the latest. Returns (checkpoints, how, in words)."""

    path = Path(run_dir)
    yaml_path, save = path / "hyperparams.yaml", path / "save"
    if not yaml_path.is_file() or not save.is_dir():
        raise DataError(path, "not an ltspk run folder: expected hyperparams.yaml and save/ (train first)")
    doc = _resolved_doc(modern_paths(yaml_path.read_text(encoding="utf-8")), yaml_path)
    _, found, how = CheckpointPolicy.from_hparams(doc).evaluation_checkpoints(AtomicCheckpointer(save))
    if not found:
        raise DataError(save, "no checkpoint: train this run first")
    return found, how


class RunEmbedder(ModuleEmbedder):
    """The embedder of an ltspk training run, from the checkpoint its evaluation uses (``run_checkpoints``)."""

    kind = "run"

    def __init__(self, run_dir, device="cpu"):
        from hyperpyyaml import load_hyperpyyaml

        self.path = Path(run_dir).resolve()
        yaml_path = self.path / "hyperparams.yaml"
        ckpts, self.checkpoint_choice = run_checkpoints(self.path)
        text, self.sample_rate = _embedding_modules_yaml(modern_paths(yaml_path.read_text(encoding="utf-8")), yaml_path)
        modules = load_hyperpyyaml(text)
        checkpointer = AtomicCheckpointer(self.path / "save", recoverables={
            "embedding_model": modules["embedding_model"], "normalizer": modules["mean_var_norm"]})
        try:
            checkpointer.load_checkpoint(ckpts[0])  # the latest of them: normaliser (and the model unless averaged)
            if len(ckpts) > 1:
                average_into(modules, ckpts, names=("embedding_model",))
        except (RuntimeError, KeyError, FileNotFoundError, ValueError) as e:
            raise DataError(self.path / "save", f"checkpoint does not fit the run's model ({e})") from None
        self.checkpoint = str(ckpts[0].path)
        super().__init__(modules, device)

    def spec(self):
        return {"kind": self.kind, "source": str(self.path)}


class SpeechBrainEmbedder(Embedder):
    """A SpeechBrain model folder on disk, through ``EncoderClassifier``."""

    kind = "speechbrain"

    def __init__(self, folder, device="cpu", normalize=False):
        self.path = Path(folder).resolve()
        if not self.path.is_dir():
            raise DataError(folder, "SpeechBrain model folder not found (only folders on disk are used: "
                                    "nothing is fetched from a model hub)")
        missing = missing_model_files(self.path)
        if missing:
            present = sorted(p.name for p in self.path.iterdir())[:10]
            raise DataError(self.path, f"not a SpeechBrain model folder: missing {', '.join(missing)} (a folder like "
                                       f"spkrec-ecapa-voxceleb holds hyperparams.yaml, embedding_model.ckpt, "
                                       f"mean_var_norm_emb.ckpt, ...; found {present})")
        self.normalize = bool(normalize)
        if self.normalize and not (self.path / "mean_var_norm_emb.ckpt").is_file():
            raise DataError(self.path, "normalize=True needs mean_var_norm_emb.ckpt in the folder")
        from speechbrain.inference.speaker import EncoderClassifier

        try:
            self.model = EncoderClassifier.from_hparams(source=str(self.path), savedir=str(self.path),
                                                        run_opts={"device": str(device)})
        except Exception as e:  # noqa: BLE001 (SpeechBrain raises many kinds: name the folder)
            raise DataError(self.path, f"EncoderClassifier could not load the folder ({type(e).__name__}: {e})") from None
        if self.model is None:
            raise DataError(self.path, "EncoderClassifier could not load the folder")
        self.model.eval()
        self.sample_rate = int(getattr(getattr(self.model, "audio_normalizer", None), "sample_rate", 16000))
        self._fp = None

    def _embed(self, wavs, lens):
        return self.model.encode_batch(wavs, lens, normalize=self.normalize)

    def fingerprint(self):
        if self._fp is None:
            files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix in (".yaml", ".ckpt"))
            self._fp = _digest_files(files, {"kind": self.kind, "normalize": self.normalize})
        return self._fp

    def spec(self):
        return {"kind": self.kind, "source": str(self.path), "normalize": self.normalize}


RESEMBLYZER_HINT = ("the resemblyzer embedder needs the optional packages: pip install 'ltspk[identify-resemblyzer]' "
                    "(resemblyzer, librosa, and webrtcvad-wheels: the old webrtcvad 2.0.10 imports pkg_resources, "
                    "which setuptools 81+ no longer has)")


def resemblyzer_available():
    try:
        import resemblyzer  # noqa: F401
    except Exception:  # noqa: BLE001 (ImportError, or webrtcvad's pkg_resources failure)
        return False
    return True


class ResemblyzerEmbedder(Embedder):
    """resemblyzer's pretrained GE2E speaker encoder (weights ship in the package; nothing is downloaded)."""

    kind = "resemblyzer"
    sample_rate = 16000

    def __init__(self, device="cpu", preprocess=True):
        try:
            import resemblyzer
            from resemblyzer import VoiceEncoder, preprocess_wav
        except Exception as e:  # noqa: BLE001
            raise DataError("resemblyzer", f"{RESEMBLYZER_HINT} ({type(e).__name__}: {e})") from None
        self._preprocess_wav = preprocess_wav
        self.preprocess = bool(preprocess)
        self.encoder = VoiceEncoder(str(device), verbose=False)
        self.weights = Path(resemblyzer.__file__).parent / "pretrained.pt"
        self.version = getattr(resemblyzer, "__version__", "?")
        self._fp = None

    def _one(self, wav):
        wav = np.asarray(wav, dtype=np.float32)
        if self.preprocess:
            trimmed = self._preprocess_wav(wav, source_sr=self.sample_rate)
            # nothing left after silence trimming (silent or very short audio): keep the original
            if trimmed.size >= int(self.min_seconds * self.sample_rate):
                wav = trimmed
        return self.encoder.embed_utterance(wav)

    def _embed(self, wavs, lens):
        n = wavs.shape[1]
        out = [self._one(wavs[i, : max(1, int(round(float(lens[i]) * n)))].numpy()) for i in range(wavs.shape[0])]
        return torch.from_numpy(np.stack(out))

    def fingerprint(self):
        if self._fp is None:
            self._fp = _digest_files([self.weights], {"kind": self.kind, "preprocess": self.preprocess})
        return self._fp

    def spec(self):
        return {"kind": self.kind, "source": "resemblyzer", "preprocess": self.preprocess}


def check_device(device):
    """Refuse, before any work, a CUDA device on a machine that has none (torch's own error comes
    from deep inside the first module moved there)."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise HparamsError(f"--device {device}: torch sees no CUDA device on this machine "
                           "(torch.cuda.is_available() is False): use --device cpu")


def load_embedder(source, device="cpu"):
    """An embedder from ``run:DIR``, ``speechbrain:DIR``, ``resemblyzer`` or a DIR whose
    layout says which (a SpeechBrain model folder or an ltspk run: ``source_kind``)."""
    check_device(device)
    source = str(source)
    if source == "resemblyzer":
        return ResemblyzerEmbedder(device)
    kind, path = source_kind(source)
    if not source.startswith(SOURCE_PREFIXES) and not path.is_dir():
        raise DataError(source, "embedder not found: give an ltspk run folder, a SpeechBrain model folder "
                                "(hyperparams.yaml + embedding_model.ckpt), or 'resemblyzer'")
    return (RunEmbedder if kind == "run" else SpeechBrainEmbedder)(path, device)


def from_spec(spec, device="cpu"):
    """Rebuild an embedder from ``Embedder.spec()``."""
    kind = spec.get("kind")
    if kind == "run":
        return RunEmbedder(spec["source"], device)
    if kind == "speechbrain":
        return SpeechBrainEmbedder(spec["source"], device, normalize=spec.get("normalize", False))
    if kind == "resemblyzer":
        return ResemblyzerEmbedder(device, preprocess=spec.get("preprocess", True))
    raise DataError("embedder", f"unknown embedder kind {kind!r}")
