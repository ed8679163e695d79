"""An enrolment's settings (``EnrolSettings``) and the names it chooses among: the identification
methods (``FAMILIES``) and the rejection scores (``REJECT_BY``)."""

from dataclasses import dataclass, field

from ltspk.data.folder import compile_session_pattern
from ltspk.data.longtail import AUTO, HOLDOUT_BY
from ltspk.runtime.errors import DataError

FAMILIES = ("linear", "NCM", "posthoc_la", "la_loss", "cRT", "tau_norm", "LWS")  # ties: earlier wins
REJECT_BY = ("prob", "score")
REJECT_LABEL = {"prob": "calibrated probability", "score": "logit (cosine for NCM)"}


@dataclass
class EnrolSettings:
    test_per_speaker: int = 2
    valid_per_speaker: int = 2
    impostors: object = None  # None, a number >= 2, a fraction in (0, 1), or a list of speaker names
    many_above: float | str = "auto"  # or "auto": the tertiles of the enrolled counts
    few_below: float | str = "auto"
    quantiles: list | None = None  # [low, high] instead of many_above / few_below
    holdout_by: str = "session"  # test / validation recordings from sessions never enrolled, where known; or utterance
    session_pattern: str | None = None  # regex with (?P<session>...) on file names; else the folder after the speaker
    imbalance_factor: float | None = None
    target_far: float = 0.05
    fars: list = field(default_factory=lambda: [0.01, 0.05, 0.1])
    method: str = "auto"  # auto (best on validation) or one of FAMILIES
    reject_by: str = "auto"  # auto (best validation OSCR), prob or score
    max_seconds: float | None = None
    batch_size: int = 1
    seed: int = 0
    linear_options: dict = field(default_factory=dict)  # epochs, lr, batch_size, weight_decay, min_steps
    lws_options: dict = field(default_factory=dict)

    def check(self):
        if self.valid_per_speaker < 1:
            raise DataError("valid_per_speaker", "every setting is chosen on validation recordings: need >= 1")
        if self.test_per_speaker < 0:
            raise DataError("test_per_speaker", "must be >= 0")
        if self.method not in ("auto", *FAMILIES):
            raise DataError("method", f"{self.method!r}: choose auto or one of {', '.join(FAMILIES)}")
        if self.reject_by not in ("auto", *REJECT_BY):
            raise DataError("reject_by", f"{self.reject_by!r}: choose auto, prob or score")
        if not 0 < self.target_far < 1:
            raise DataError("target_far", f"must be in (0, 1), got {self.target_far}")
        bad = [f for f in self.fars if not 0 < f <= 1]
        if bad or not self.fars:
            raise DataError("fars", f"false-alarm rates must be in (0, 1], got {bad or self.fars}")
        if self.batch_size < 1:
            raise DataError("batch_size", "must be >= 1")
        if self.holdout_by not in HOLDOUT_BY:
            raise DataError("holdout_by", f"{self.holdout_by!r}: choose {' or '.join(HOLDOUT_BY)}")
        for key in ("many_above", "few_below"):
            v = getattr(self, key)
            if v != AUTO and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise DataError(key, f"must be a number or 'auto', got {v!r}")
        compile_session_pattern(self.session_pattern)
        return self
