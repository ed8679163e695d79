"""ltspk: long-tailed speaker recognition on SpeechBrain."""

__version__ = "0.1.0"
