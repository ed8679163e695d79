"""Typos in hparams files and overrides are errors naming the nearest key; shipped files pass."""

import re
from pathlib import Path

import pytest

from ltspk.runtime.errors import HparamsError
from ltspk.train.hparams import check_keys, load_hparams
from ltspk.train.layering import hparams_text, merge_text

ROOT = Path(__file__).resolve().parents[1]


def test_unknown_override_names_the_nearest_key():
    with pytest.raises(HparamsError, match=r"demo_aam.yaml: the command line sets 'samplr'.*did you mean 'sampler'"):
        load_hparams(ROOT / "hparams" / "demo_aam.yaml", {"samplr": "class"})


def test_unknown_key_in_the_file_names_the_nearest_key(tmp_path):
    text = hparams_text(ROOT / "hparams" / "demo_aam.yaml")
    f = tmp_path / "typo.yaml"
    f.write_text(text.replace("sampler: null", "samplr: class"))
    with pytest.raises(HparamsError, match=r"typo.yaml: unknown key 'samplr'; did you mean 'sampler'\?"):
        load_hparams(f)
    # a helper key the file itself uses through !ref is fine
    f.write_text(text.replace("focal_gamma: 2.0", "my_rate: 0.5\nfocal_gamma: !ref <my_rate>", 1))
    assert load_hparams(f)["focal_gamma"] == 0.5


@pytest.mark.parametrize("key,value,name", [("number_of_epochs", 0, "number_of_epochs"),
                                            ("eval_batch_size", -1, "eval_batch_size"),
                                            ("train_dataloader_options", {"batch_size": 0},
                                             "train_dataloader_options.batch_size")])
def test_impossible_numbers_are_refused(key, value, name):
    with pytest.raises(HparamsError, match=f"{name} must be a positive number"):
        load_hparams(ROOT / "hparams" / "demo_aam.yaml", {key: value})


@pytest.mark.parametrize("path", sorted((ROOT / "hparams").rglob("*.yaml")), ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_files_use_known_keys(path):
    text = hparams_text(path)
    keys = dict.fromkeys(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*):", text, re.M))
    assert "base" not in keys
    check_keys(path, keys, text)  # raises on a key ltspk does not read


def test_one_preparation_value_is_one_override():
    """Preparation and corpus options are top-level keys: one override changes one value."""
    import speechbrain as sb

    from ltspk.data.corpora import options_from_hparams

    _, _, overrides = sb.parse_arguments([str(ROOT / "hparams" / "folder_aam.yaml"), "--data_folder", "x",
                                          "--holdout_per_speaker", "3", "--n_trials", "50"])
    corpus, data, prepared, opts, corpus_opts = options_from_hparams(
        load_hparams(ROOT / "hparams" / "folder_aam.yaml", overrides))
    assert (corpus, data, prepared) == ("folder", "x", "results/folder_aam/1986/prepared")
    assert (opts.holdout_per_speaker, opts.valid_per_speaker, opts.imbalance_factor, opts.seed) == (3, "auto", 20, 1986)
    assert (opts.shot_many_above, opts.shot_few_below, opts.workers, opts.progress) == ("auto", "auto", 8, False)
    assert opts.holdout_by == "session"
    assert corpus_opts == {"session_pattern": "^[^-]+-(?P<session>[^-]+)-", "verification_speakers": 10,
                           "trials": None, "n_trials": 50}
    # trials: null is the corpus's default: the preparation's fingerprint is that of a file without the key
    from ltspk.data.prepared import fingerprint

    without = {k: v for k, v in corpus_opts.items() if k != "trials"}
    assert fingerprint(corpus, data, opts, corpus_opts) == fingerprint(corpus, data, opts, without)


def test_nested_options_of_older_files_are_read_and_not_mixed(tmp_path):
    """Run folders written before the flat keys hold prep_options / corpus_options: still read; a value set
    both ways is refused."""
    from ltspk.data.corpora import options_from_hparams

    hp = {"corpus": "voxceleb", "data_folder": "v1", "prepared_folder": "p", "seed": 7, "vox2_folder": "v2",
          "prep_options": {"holdout_per_speaker": 4, "seed": 7},
          "corpus_options": {"vox2_folder": "v2", "train_sets": ["vox2_dev"]}}
    _, _, _, opts, corpus_opts = options_from_hparams(hp)
    assert (opts.holdout_per_speaker, opts.valid_per_speaker, opts.seed) == (4, 0, 7)
    assert corpus_opts == {"vox2_folder": "v2", "train_sets": ["vox2_dev"]}
    with pytest.raises(HparamsError, match="prep_options and the top-level key.*holdout_per_speaker"):
        options_from_hparams({**hp, "holdout_per_speaker": 2})
    with pytest.raises(HparamsError, match="vox2_folder is 'other' but corpus_options.vox2_folder is 'v2'"):
        options_from_hparams({**hp, "vox2_folder": "other"})
    with pytest.raises(HparamsError, match="corpus: 'voxcelb' is not a corpus"):
        options_from_hparams({**hp, "corpus": "voxcelb"})


def test_base_files_merge_key_by_key(tmp_path):
    """A key set again replaces the base's block whole (no argument of the base's object survives); other
    keys keep their place; later bases win over earlier ones; the file's own keys win over all."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "corpus.yaml").write_text(
        "# corpus base\nseed: 1\nlr: 0.1\nhead: !new:collections.OrderedDict\n    margin: 0.2\n    scale: 30\n"
        "# comment of head\n\n# ---- section\nrate: !ref <lr>\n")
    (tmp_path / "b" / "head.yaml").write_text("head: !new:collections.OrderedDict\n    alpha: 1.5\nlr: 0.5\nextra: 3\n")
    run = tmp_path / "run.yaml"
    run.write_text("# the run\nbase: [b/corpus.yaml, b/head.yaml]\n\nseed: 2\n")
    text = hparams_text(run)
    assert text.startswith("# the run\n") and "base:" not in text and "margin" not in text
    assert text.index("lr: 0.5") < text.index("# ---- section") < text.index("extra: 3")  # replaced in place
    from hyperpyyaml import load_hyperpyyaml

    hp = load_hyperpyyaml(text)
    assert (hp["seed"], hp["lr"], hp["rate"], hp["extra"], dict(hp["head"])) == (2, 0.5, 0.5, 3, {"alpha": 1.5})
    assert merge_text("a: 1\nb: 2\n", "b: 3\n") == "a: 1\nb: 3\n"

    (tmp_path / "loop.yaml").write_text("base: loop2.yaml\nseed: 1\n")
    (tmp_path / "loop2.yaml").write_text("base: loop.yaml\nlr: 1\n")
    with pytest.raises(HparamsError, match="loop2.yaml: base loop.yaml includes itself"):
        hparams_text(tmp_path / "loop.yaml")
    (tmp_path / "lost.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(HparamsError, match="lost.yaml: base nowhere.yaml not found"):
        hparams_text(tmp_path / "lost.yaml")


def test_blocks_end_where_the_yaml_value_ends(tmp_path):
    """A blank line inside a value, a block scalar, a column-0 list: each stays with its key when merged."""
    from hyperpyyaml import load_hyperpyyaml

    base = ("lr: 0.1\nopts:\n    x: 1\nnote: |\n    line1\n\n    line2\np: [0.01, 0.05]\n"
            "valid_dataloader_options:\n    batch_size: 8\n")
    own = "opts:\n    x: 5\n\n    y: 6\nnote: new\np:\n- 0.5\n- 0.7\nlast:\n- 1\n\n# trailing comment\n"
    hp = load_hyperpyyaml(merge_text(base, own))
    assert hp["opts"] == {"x": 5, "y": 6} and hp["note"] == "new" and hp["p"] == [0.5, 0.7] and hp["last"] == [1]
    assert hp["valid_dataloader_options"] == {"batch_size": 8} and hp["lr"] == 0.1
    hp = load_hyperpyyaml(merge_text(own, "lr: 1\n"))  # the base's values with blank lines survive a merge
    assert hp["opts"] == {"x": 5, "y": 6} and hp["p"] == [0.5, 0.7] and hp["lr"] == 1
    # base: quoted, as a block list, after a BOM; an indented base: is a value, not the file's base
    (tmp_path / "b.yaml").write_text("a: 1\nnested:\n    base: not_a_file.yaml\n")
    for head in ('base: "b.yaml"\n', "base:\n- b.yaml\n", "\ufeffbase: b.yaml  # the corpus\n"):
        (tmp_path / "h.yaml").write_text(head + "c: 2\n", encoding="utf-8")
        hp = load_hyperpyyaml(hparams_text(tmp_path / "h.yaml"))
        assert (hp["a"], hp["c"], hp["nested"]) == (1, 2, {"base": "not_a_file.yaml"}), head
    (tmp_path / "h.yaml").write_text("base:\nc: 2\n")
    with pytest.raises(HparamsError, match="h.yaml: base: expects a file name or a list of file names"):
        hparams_text(tmp_path / "h.yaml")
    (tmp_path / "h.yaml").write_text("base: b.yaml\nc: [1, 2\n")
    with pytest.raises(HparamsError, match="h.yaml: not valid YAML"):
        hparams_text(tmp_path / "h.yaml")


def test_a_key_of_another_corpus_is_refused():
    from ltspk.data.corpora import options_from_hparams

    hp = load_hparams(ROOT / "hparams" / "folder_aam.yaml", {"data_folder": "x"})
    with pytest.raises(HparamsError, match="concat_min_seconds: a cnceleb key, which the folder corpus does not read"):
        options_from_hparams({**hp, "concat_min_seconds": 5})
    # an older run folder: a top-level null beside the nested value of corpus_options, which is the one used
    old = {"corpus": "voxceleb", "data_folder": "v1", "prepared_folder": "p", "seed": 1, "vox2_folder": None,
           "prep_options": {"seed": 1}, "corpus_options": {"vox2_folder": "/data/vox2", "train_sets": ["vox2_dev"]}}
    assert options_from_hparams(old)[4] == {"vox2_folder": "/data/vox2", "train_sets": ["vox2_dev"]}


@pytest.mark.parametrize("path", sorted((ROOT / "hparams").glob("*.yaml")), ids=lambda p: p.name)
def test_configurations_are_a_base_and_a_head(path):
    """Each runnable configuration names its bases and its own experiment; an AAM configuration holds no
    CausalNorm key, a CausalNorm one no AAM margin key; the run folder's copy loads on its own."""
    from hyperpyyaml import load_hyperpyyaml, resolve_references

    own = path.read_text()
    assert re.search(r"^base: ", own, re.M) and f"experiment: {path.stem}\n" in own
    text = hparams_text(path)
    if path.stem.endswith(("_aam", "_la")):
        assert "CausalNorm" not in text and "tde_alphas" not in text
    if "_tde" in path.stem:
        assert "AAMHead" not in text and "margin_schedule" not in text
    saved = resolve_references(text, {"data_folder": "d", "vox2_folder": "v", "cn2_folder": "c"}).getvalue()
    assert load_hyperpyyaml(saved)["experiment"] == path.stem
