"""Corpus preparation, long-tail statistics, samplers and the synthetic demo corpus."""
