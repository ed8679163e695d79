"""argparse types for the recipes' options whose hparams key also takes a word: ``auto`` (fitted
to the corpus) or ``none`` / ``null`` (off), so the command line accepts what the YAML accepts."""

import argparse


def typed(convert, what, words):
    """A type that maps each of ``words`` (case-insensitive) to its value and converts the rest."""
    def parse(text):
        low = text.strip().lower()
        if low in words:
            return words[low]
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    parse.__name__ = what
    return parse


NULL = {"none": None, "null": None}
count_or_auto = typed(int, "a whole number or 'auto'", {"auto": "auto"})
number_or_auto = typed(float, "a number or 'auto'", {"auto": "auto"})
number_or_none = typed(float, "a number or 'none'", NULL)


def option_strings(parser):
    """Every option string of ``parser`` and of its sub-commands -> the option's first (canonical) string."""
    found = {}
    for action in parser._actions:  # argparse keeps no public list of them
        found.update(dict.fromkeys(action.option_strings, action.option_strings[0] if action.option_strings else ""))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.update(option_strings(sub))
    return found


def parse_args(parser, argv):
    """``parser.parse_args(argv)``, but an unknown option is an error that names the nearest one by
    its canonical name (``--many_above`` -> ``--shot_many_above``) instead of a bare
    "unrecognized arguments"."""
    import difflib

    args, unknown = parser.parse_known_args(argv)
    if unknown:
        known = option_strings(parser)
        hints = []
        for u in [u for u in unknown if u.startswith("--")] or unknown:
            near = difflib.get_close_matches(u.split("=", 1)[0], sorted(known), n=1, cutoff=0.6)
            hints.append(u + (f" (did you mean {known[near[0]]}?)" if near else ""))
        parser.error("unrecognized arguments: " + " ".join(hints))
    return args
