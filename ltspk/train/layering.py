"""A hparams file that starts from other files: ``base: [base/voxceleb.yaml, heads/tde.yaml]`` merges those
files top-level key by top-level key, in order, and then the file's own keys over them, before
hyperpyyaml reads the whole; a key set again replaces the earlier block whole. Bases may have bases.
The run folder's ``hyperparams.yaml`` holds the merged whole.

The ``base:`` value carries the tag ``!apply:ltspk.train.layering.bases``: ltspk's loader reads the
names and drops the key before hyperpyyaml sees the text, while hyperpyyaml alone, which would
silently return the file's own few keys, calls ``bases`` and is told to use ltspk's loader."""

from pathlib import Path

from ltspk.runtime.errors import HparamsError
from ltspk.runtime.legacy import modern_paths
from ltspk.train.pretrained import with_finetune_keys


def bases(*names):
    """Called only when a file with ``base:`` is read by hyperpyyaml alone: refuse, naming the loader."""
    raise HparamsError(f"this hparams file starts from other files (base: {', '.join(map(str, names))}), which "
                       "hyperpyyaml alone does not merge: load it with ltspk.train.hparams.load_hparams (or run it "
                       "with recipes/train.py), which merges them")


def compose(text, where):
    """The YAML node tree of ``text`` (tags kept, nothing built); ``HparamsError`` naming ``where``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        root = YAML().compose(text)
    except YAMLError as e:
        raise HparamsError(f"{where}: not valid YAML: {e}") from None
    from ruamel.yaml.nodes import MappingNode

    if root is not None and not isinstance(root, MappingNode):
        raise HparamsError(f"{where}: an hparams file is a mapping of keys to values")
    return root


def blocks(text, where="hparams"):
    """``text`` as ``(key, block, value_node)`` triples, in order: a top-level key's block runs from its
    line through the last line of its value (found by the YAML parser, so blank lines inside a value,
    block scalars and column-0 ``- item`` lists stay in it), plus the column-0 comment lines right
    after it; what lies between blocks (blank lines, section comments) is a block of key ``None``."""
    lines = text.splitlines(keepends=True)
    root = compose(text, where)
    spans = []
    for key_node, value_node in (root.value if root is not None else []):
        start, end = key_node.start_mark.line, value_node.end_mark.line
        last = end if value_node.end_mark.column > 0 else end - 1
        last = min(max(last, start), len(lines) - 1)
        while last > start and (not lines[last].strip() or lines[last].startswith("#")):
            last -= 1  # a block value's end mark lies past the blank lines and comments that follow it
        spans.append((str(key_node.value), start, last, value_node))
    out, pos = [], 0
    for n, (key, start, last, node) in enumerate(spans):
        if start > pos:
            out.append((None, "".join(lines[pos:start]), None))
        stop = spans[n + 1][1] if n + 1 < len(spans) else len(lines)
        last += 1
        while last < stop and lines[last].startswith("#"):
            last += 1  # comment lines right after a value belong to it
        out.append((key, "".join(lines[start:last]), node))
        pos = last
    if pos < len(lines):
        out.append((None, "".join(lines[pos:]), None))
    return out


def merge_text(base, own, where="hparams"):
    """``base`` YAML text with the top-level blocks of ``own`` put over it: a key of both keeps the
    base's place and takes ``own``'s block; ``own``'s other keys (and the comments between them)
    follow at the end; ``own``'s leading comments come first."""
    mine = blocks(own, where)
    lead = []
    while mine and mine[0][0] is None:
        lead.append(mine.pop(0)[1])
    replace = {k: b for k, b, _ in mine if k is not None}
    placed, body = set(), []
    for key, block, _ in blocks(base, where):
        if key in replace:
            block = replace[key]
            placed.add(key)
        body.append(block if block.endswith("\n") else block + "\n")
    rest = [b for k, b, _ in mine if k not in placed]
    return "".join(lead) + "".join(body) + ("\n" + "".join(rest) if rest else "")


def _base_names(node, path):
    """The file names of a ``base:`` value: one name or a list of names."""
    from ruamel.yaml.nodes import ScalarNode, SequenceNode

    items = node.value if isinstance(node, SequenceNode) else [node]
    if not items or not all(isinstance(n, ScalarNode) and str(n.value).strip() for n in items):
        raise HparamsError(f"{path}: base: expects a file name or a list of file names, e.g. "
                           "base: [base/voxceleb.yaml, heads/tde.yaml]")
    return [str(n.value).strip() for n in items]


def hparams_text(hparams_file, overrides=None, _seen=()):
    """The YAML text hyperpyyaml reads for ``hparams_file``: its ``base:`` files merged under it
    (``merge_text``), and the fine-tuning keys added when the overrides set them
    (``ltspk.train.pretrained.with_finetune_keys``)."""
    path = Path(hparams_file)
    try:
        text = modern_paths(path.read_text(encoding="utf-8-sig"))  # a run folder written by an older ltspk
    except OSError as e:
        raise HparamsError(f"{path}: cannot read the hparams file ({e.strerror or e})") from None
    parts = blocks(text, path)
    base_nodes = [node for key, _, node in parts if key == "base"]
    if base_nodes:
        own = "".join(block for key, block, _ in parts if key != "base")
        merged = ""
        for name in _base_names(base_nodes[0], path):
            base = (path.parent / name).resolve()
            if base in _seen or base == path.resolve():
                raise HparamsError(f"{path}: base {name} includes itself (through {' -> '.join(map(str, _seen))})")
            if not base.is_file():
                raise HparamsError(f"{path}: base {name} not found (looked for {base})")
            part = hparams_text(base, None, (*_seen, path.resolve()))
            merged = merge_text(merged, part, base) if merged else part
        text = merge_text(merged, own, path)
    if overrides is None:
        return text

    return with_finetune_keys(text, overrides)  # --pretrained_embedder on any file
