"""What the recipes in ``recipes/`` share: one entry that turns ltspk's errors into one line and a
non-zero exit (``entry.run``), their help with the main hparams keys, printed without importing
torch (``help``), and argument types that accept ``auto`` / ``none`` as the YAML does
(``argtypes``). Top layer: may import any package; no package imports it."""
