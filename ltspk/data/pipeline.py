"""SpeechBrain data pipelines: random training crops, whole utterances for evaluation, labels."""

import math

import numpy as np
import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.dataio.encoder import CategoricalEncoder

from ltspk.data.audio import read_segment, to_tensor
from ltspk.runtime.atomic import atomic_path
from ltspk.runtime.errors import DataError


def _refuse_if_silent(path):
    x, _ = read_segment(path)
    if not np.any(x):
        raise DataError(path, "all samples are zero (silent file): remove it, or prepare with --verify-samples "
                              "to have such files listed in bad_files.txt and left out")


def crop_pipeline(sample_rate, crop_seconds):
    """A random ``crop_seconds`` window of each utterance, repeated to fill when shorter."""

    @sb.utils.data_pipeline.takes("wav", "start", "stop")
    @sb.utils.data_pipeline.provides("sig")
    def pipeline(wav, start, stop):
        start, stop = int(start), int(stop)

        def window(sr):
            need, avail = math.ceil(crop_seconds * sr), stop - start
            offset = start + (int(torch.randint(0, avail - need + 1, (1,))) if avail > need else 0)
            return offset, min(need, avail)

        x, sr = read_segment(wav, window)
        if not np.any(x):
            _refuse_if_silent(wav)  # a silent crop is fine; a silent file is not
        sig = to_tensor(x, sr, sample_rate, wav)
        target = int(round(crop_seconds * sample_rate))
        if sig.numel() < target:
            sig = sig.repeat(-(-target // sig.numel()))
        return sig[:target]

    return pipeline


def full_pipeline(sample_rate, max_seconds=None):
    """The whole utterance (its first ``max_seconds`` when set, to bound memory)."""

    @sb.utils.data_pipeline.takes("wav", "start", "stop")
    @sb.utils.data_pipeline.provides("sig")
    def pipeline(wav, start, stop):
        start, stop = int(start), int(stop)

        def window(sr):
            return start, (min(stop - start, int(max_seconds * sr)) if max_seconds else stop - start)

        x, sr = read_segment(wav, window)
        if not np.any(x):
            _refuse_if_silent(wav)
        return to_tensor(x, sr, sample_rate, wav)

    return pipeline


def label_pipeline(encoder):
    @sb.utils.data_pipeline.takes("spk_id")
    @sb.utils.data_pipeline.provides("spk_id_encoded")
    def pipeline(spk_id):
        return torch.LongTensor([encoder.encode_label(spk_id)])

    return pipeline


def load_dataset(csv_path, audio_pipeline, encoder=None, rows=None):
    """A DynamicItemDataset over a prepared manifest (validated first, for clear errors),
    or over ``rows`` (manifest Utterances) when given."""
    from dataclasses import asdict

    from ltspk.data.manifest import read_manifest

    rows = read_manifest(csv_path) if rows is None else rows
    ds = DynamicItemDataset({u.ID: {k: v for k, v in asdict(u).items() if k != "ID"} for u in rows})
    ds.add_dynamic_item(audio_pipeline)
    keys = ["id", "sig"]
    if encoder is not None:
        ds.add_dynamic_item(label_pipeline(encoder))
        keys.append("spk_id_encoded")
    ds.set_output_keys(keys)
    return ds


def label_encoder(path, train_csv):
    """Speaker label encoder, created from the training manifest once and then reloaded."""
    from ltspk.data.manifest import read_manifest

    enc = CategoricalEncoder()
    if path.exists():
        enc.load(path)
        enc.expect_len(len(enc.lab2ind))
        return enc
    for u in read_manifest(train_csv):
        if u.spk_id not in enc.lab2ind:
            enc.add_label(u.spk_id)
    with atomic_path(path) as tmp:
        enc.save(tmp)
    enc.expect_len(len(enc.lab2ind))
    return enc


def class_counts(encoder, counts, source):
    """Training counts in label-encoder order; a mismatch is a clear error."""
    labels = [encoder.ind2lab[i] for i in range(len(encoder))]
    missing = [s for s in labels if s not in counts]
    extra = [s for s in counts if s not in encoder.lab2ind]
    if missing or extra:
        raise DataError(source, f"label encoder and training counts disagree: {len(missing)} speaker(s) only in "
                                f"the encoder (e.g. {missing[:3]}), {len(extra)} only in the counts (e.g. {extra[:3]})")
    return [counts[s] for s in labels]
