"""What every layer above relies on, with no knowledge of speakers: errors that name the file and
what is wrong (``errors``), atomic writes and folders replaced whole (``atomic``), one run per
output folder (``runlock``), random state in every checkpoint (``rng``), what a checkpoint was
trained as (``fingerprint``), crash-safe checkpoints (``checkpoints``), which checkpoints a run keeps
and evaluates (``checkpoint_policy``) and their averaging (``averaging``), figures written safely
(``figures``), and the module paths of older run folders (``legacy``). Lowest layer: imports no
other ltspk package."""
