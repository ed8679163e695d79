"""The one way a recipe runs: ``run(main, __doc__)``.

- ``-h`` / ``--help`` prints the recipe's description and the main hparams keys (``ltspk.cli.help``)
  for the recipes that take an hparams file (``doc`` given), before torch is imported;
- an error ltspk raises for bad input (``LtspkError``: it names the file or key and what is wrong)
  ends the run with ``error: ...`` on stderr and exit status 1, never a traceback;
- a reader that stops reading (``recipe | head``) ends the run quietly.
"""

import os
import sys

from ltspk.runtime.errors import LtspkError  # ltspk first: it keeps SpeechBrain's torchvision notice out


def run(main, doc=None, argv=None):
    """Call ``main(argv)`` (``sys.argv[1:]`` by default) as every recipe does, then exit."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if doc is not None and _help(argv, doc):
            status = 0
        else:
            status = main(argv)
        sys.stdout.flush()
    except LtspkError as e:
        sys.exit(f"error: {e}")
    except BrokenPipeError:
        # Python's advice for a closed pipe: point stdout at devnull so that the exit flush is quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    sys.exit(status or 0)


def _help(argv, doc):
    from ltspk.cli.help import help_requested

    return help_requested(argv, doc)
