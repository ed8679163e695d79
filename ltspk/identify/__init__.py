"""Identification on a user's own long-tailed speaker set, with any embedder: enrol the speakers
(``enrol``: list and embed the recordings, split them per speaker into enrolment, validation and
test, fit the identification methods and choose their settings on validation), identify the
speaker of new recordings (``EnrolmentModel.predict``), reject speakers who were never enrolled
('unknown' below a threshold set for a target false-alarm rate, with a calibrated P(unknown)),
calibrate the scores (temperature scaling, logistic calibration of verification trials), report by
shot group, and add new speakers to a saved enrolment (``add_speakers``). ``build`` holds the
pipeline; ``rows``, ``split``, ``methods``, ``rejection``, ``model`` and ``report`` one step each
(embedding and its per-file cache: ``ltspk.embedding``)."""

from ltspk.identify.build import add_speakers, enrol
from ltspk.identify.model import EnrolmentModel
from ltspk.identify.settings import EnrolSettings

__all__ = ["EnrolSettings", "EnrolmentModel", "add_speakers", "enrol"]
