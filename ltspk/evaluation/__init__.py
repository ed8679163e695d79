"""How good a trained run is: verification (EER, minDCF, AS-norm; ``metrics``, ``scoring``),
speaker identification by shot group with every tunable inference chosen on validation
(``evaluate``), calibration and open-set figures (``calibration``, ``openset``), and the typed
results records every stage writes (``records``). Imports runtime, data, heads and embedding."""
