"""The recipes' help: their description, the main hparams keys and SpeechBrain's run options, printed
without importing torch (``--help`` answers at once)."""

import argparse
from pathlib import Path

MAIN_KEYS = {
    "data_folder": "corpus root (VoxCeleb1 root, CN-Celeb root, LibriSpeech root, or one folder per speaker)",
    "output_folder": "run folder: checkpoints, results.json / results.md, evaluation/, stage2/",
    "prepared_folder": "manifests and counts (default <output_folder>/prepared; share one between runs)",
    "seed": "drives the split, the sub-sampling, the initialisation, the crops and the shuffle order",
    "holdout_per_speaker": "speaker-ID test utterances held out per training speaker",
    "valid_per_speaker": "speaker-ID validation utterances per training speaker (every tuned setting is chosen there)",
    "imbalance_factor": "long-tail sub-sampling to this max/min ratio (null: the corpus's own counts)",
    "shot_many_above": "shot groups: many > this, few < shot_few_below (or shot_quantiles: [low, high])",
    "train_sets": "voxceleb: [vox2_dev] | [vox1_dev] | both; trial_list: O | H | E",
    "concat_min_seconds": "cnceleb: concatenate a speaker's short clips of one genre to this length (null: off)",
    "session_pattern": "folder: regex naming a file's session; verification_speakers, trials, n_trials",
    "classifier": "the head class; its arguments are keys: aam_margin, aam_la_tau (LA loss), causal_mu, causal_alpha, ...",
    "sampler": "null (shuffle) | instance | class | sqrt | progressive",
    "loss": "ce | focal",
    "number_of_epochs": "training epochs",
    "train_dataloader_options": "batch_size, num_workers, ...",
    "posthoc_la_taus": "post-hoc logit-adjustment grid, chosen on spkid_valid",
    "tde_alphas": "TDE grid (CausalNorm), chosen on spkid_valid",
    "eval_batch_size": "batch size of embedding extraction (1: independent of batching)",
    "score_norm": "null | asnorm (adaptive s-norm)",
    "precision": "fp32 | bf16 | fp16 (SpeechBrain run option)",
}


class DefaultsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse help for the recipes with options of their own (prepare.py, extract.py): the
    description keeps its layout and every option's help ends with its default (or says nothing
    more for a required option)."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if not action.option_strings or action.required or d is argparse.SUPPRESS or "%(default)" in text:
            return text
        if isinstance(d, (list, tuple)):
            return f"{text} (default: {' '.join(map(str, d))})"
        return f"{text} (default: %(default)s)"


def help_requested(argv, doc):
    """Print a recipe's description and its main hparams keys when -h/--help is asked, then
    SpeechBrain's run options; return whether it was asked (the recipe then exits)."""
    if not ({"-h", "--help"} & set(argv)):
        return False
    print(doc.strip(), "\nMain hparams keys (any key of the YAML can be overridden: --key VALUE):\n")
    for key, text in MAIN_KEYS.items():
        print(f"  --{key:<26} {text}")
    print("\nSpeechBrain run options (--device, --precision, --noprogressbar, --distributed_launch, ...):")
    try:
        _speechbrain_run_options().from_command_line_args(["--help"])
    except SystemExit:
        pass
    return True


def _speechbrain_run_options():
    """SpeechBrain's ``RunOptions`` (what ``sb.parse_arguments`` parses with), read from its module
    alone: importing the ``speechbrain`` package imports torch, seconds that ``--help`` need not wait."""
    import importlib.util
    import sys

    name = "speechbrain.utils.run_opts"
    if name in sys.modules:
        return sys.modules[name].RunOptions
    package = importlib.util.find_spec("speechbrain")
    spec = importlib.util.spec_from_file_location("_ltspk_sb_run_opts", Path(package.origin).parent / "utils" / "run_opts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RunOptions
