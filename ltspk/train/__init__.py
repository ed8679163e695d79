"""Training a speaker embedder with a long-tail head: hparams loaded and checked (``hparams``, with
files layered by ``layering``; relocatable run folders: ``run_folder``), options read once
(``options``), the SpeechBrain Brain (``brain``) and the Experiment that builds it on prepared data
(``experiment``), schedules (``schedulers``), losses (``losses``), waveform augmentation
(``augment``), fine-tuning a pretrained embedder (``pretrained``), training curves (``curves``) and
export as a SpeechBrain model folder (``export``). Imports every layer below it."""
