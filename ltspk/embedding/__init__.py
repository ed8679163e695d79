"""One way to embed audio: every speaker embedder (a run in memory or on disk, a SpeechBrain model
folder, resemblyzer) behind one ``Embedder`` interface (``embedders``), manifests embedded in
length-sorted batches with caches keyed on the model, the manifest, the audio files and the
settings (``cache``: evaluation, stage 2, extraction), files read and resampled to the embedder's
rate (``reading``) with a per-file cache (``file_cache``: identification), and embedding tables
on disk (``tables``). Imports runtime, data and heads."""
