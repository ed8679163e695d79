"""Caches that must see a change: the embedding cache is made again when a manifest's audio files
change (not only the manifest), and a preparation whose counts.json was edited is not reused."""

import os

import numpy as np
import pytest
from conftest import write_audio

from ltspk.data.manifest import Utterance, write_manifest

H = {"sample_rate": 16000, "eval_max_seconds": None, "eval_batch_size": 1}


@pytest.fixture
def manifest(tmp_path):
    rows = [Utterance(f"u{i}", 0.5, str(write_audio(tmp_path / "audio" / f"u{i}.wav", 0.5, seed=i)), 0, 8000, f"s{i}")
            for i in range(2)]
    write_manifest(tmp_path / "m.csv", rows)
    return tmp_path / "m.csv", rows


def test_embedding_cache_is_made_again_when_the_audio_changes(manifest, tmp_path, monkeypatch):
    import ltspk.embedding.cache as embed

    csv, rows = manifest
    calls = []

    def fake_embed(brain, csv_path, h, progress, rows=None):
        calls.append(csv_path)
        return ["u0", "u1"], np.full((2, 3), float(len(calls)), dtype=np.float32)

    monkeypatch.setattr(embed, "embed_manifest", fake_embed)
    cache = tmp_path / "cache" / "m.npz"
    first = embed.cached_embeddings(None, csv, cache, H, False, fingerprint="m")
    again = embed.cached_embeddings(None, csv, cache, H, False, fingerprint="m")
    assert len(calls) == 1 and np.array_equal(first[1], again[1])  # same model, manifest and audio: reused

    st = os.stat(rows[1].wav)
    write_audio(rows[1].wav, 0.5, seed=99)  # the audio overwritten in place, the manifest unchanged
    os.utime(rows[1].wav, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    _, emb = embed.cached_embeddings(None, csv, cache, H, False, fingerprint="m")
    assert len(calls) == 2 and emb[0, 0] == 2.0


def test_embedding_cache_names_a_missing_audio_file(manifest, tmp_path):
    from ltspk.embedding.cache import cached_embeddings
    from ltspk.runtime.errors import DataError

    csv, rows = manifest
    os.unlink(rows[0].wav)
    with pytest.raises(DataError, match=f"{rows[0].wav}: audio file of utterance 'u0' .*not found"):
        cached_embeddings(None, csv, tmp_path / "c.npz", H, False, fingerprint="m")


def test_an_edited_counts_json_is_not_reused(vox1_tree, tmp_path):
    import json

    from ltspk.data.prepare import PrepOptions
    from ltspk.data.prepared import check_prepared, ensure_prepared
    from ltspk.runtime.errors import DataError

    opts, corpus = PrepOptions(holdout_per_speaker=1, progress=False, workers=1), {"train_sets": ["vox1_dev"]}
    out = tmp_path / "prep"
    ensure_prepared("voxceleb", vox1_tree, out, opts, corpus)
    assert check_prepared(out, "voxceleb", vox1_tree, opts, corpus)
    counts = json.loads((out / "counts.json").read_text())
    spk = next(iter(counts["shot_groups"]))
    counts["shot_groups"][spk] = "many" if counts["shot_groups"][spk] != "many" else "few"
    (out / "counts.json").write_text(json.dumps(counts))
    with pytest.raises(DataError, match="counts.json changed since preparation"):
        check_prepared(out, "voxceleb", vox1_tree, opts, corpus)
