"""Comparing runs across configurations and seeds: records grouped with their intervals
(``comparison``, ``stats``), tables (``report``), plots (``plots``), the recommendation chosen on
validation with its interval (``recommend``), and the study of TDE's premise (``tde_study``).
Reads run folders only through their records; imports runtime, embedding and evaluation."""
