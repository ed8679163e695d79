"""ltspk: long-tailed speaker recognition on SpeechBrain."""

import logging

__version__ = "0.1.0"


class _DropNotice(logging.Filter):
    """SpeechBrain 1.1 warns at import that torchvision (for saving sample images, unused here)
    is missing; ltspk never needs it, so the line is kept out of every run's output."""

    def filter(self, record):
        return not record.getMessage().startswith("torchvision is not available")


logging.getLogger("speechbrain.utils.train_logger").addFilter(_DropNotice())
