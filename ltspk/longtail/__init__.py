"""Decoupled learning on frozen embeddings (Kang et al., ICLR 2020): cRT, tau-normalisation, LWS and
NCM (``decoupled``, each registered in ``ltspk.heads.methods``), and stage 2 on a trained run, which
chooses their settings on validation and writes its records beside the evaluation's (``stage2``).
Imports runtime, data, heads, embedding and evaluation."""
