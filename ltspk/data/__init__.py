"""Speaker corpora as manifests: the on-disk layouts of VoxCeleb1/2, CN-Celeb1/2, LibriSpeech and plain
speaker folders (``voxceleb``, ``cnceleb``, ``librispeech``, ``folder``), preparation with hold-outs by
session, long-tail sub-sampling and shot groups (``prepare``, ``longtail``), trial lists
(``trials``), audio reading and the training pipeline (``audio``, ``pipeline``), samplers
(``samplers``), summaries (``summary``) and the synthetic demo corpus (``synthetic``). Imports runtime."""
