"""``python -m core train --spec SPEC.json`` or ``python -m core train --arch A --data DIR --tag T …``.

Trains a registry architecture on a face-crop dataset (made by ``extract-faces``) and, on
success, writes the model card ``<arch>.<tag>`` and its weights where the registry finds them.
Flags override the spec file's values. The run folder (``--out``, default under the user cache)
holds spec.json, status.json, metrics.jsonl, train.log and the best checkpoint; create a file
named ``cancel`` in it (or send SIGTERM) to stop the run cleanly.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from core.commands import UsageError, load_settings, positive_int

# flag -> (spec field, argparse keyword arguments); every flag defaults to None = "not given".
_FLAGS: dict[str, tuple[str, dict]] = {
    "--arch": ("arch", {"help": "architecture: meso4, mesoinception4 or xception"}),
    "--data": ("data", {"metavar": "DIR", "help": "face-crop dataset folder (extract-faces output)"}),
    "--tag": ("tag", {"help": "the card id becomes <arch>.<tag> (a-z, 0-9, _ -)"}),
    "--init": ("init", {"help": "random, imagenet (Xception, from the Keras cache) or a card id"}),
    "--epochs": ("epochs", {"type": positive_int(), "help": "total epochs (default 10)"}),
    "--head-epochs": ("head_epochs", {"type": int, "help": "Xception: epochs with the backbone frozen"}),
    "--trainable-blocks": ("trainable_blocks", {"type": int, "help": "Xception: top blocks to fine-tune (default 4)"}),
    "--input-size": (
        "input_size",
        {
            "type": int,
            "help": "input side in pixels (default native: Xception 299, MesoNet 256; Xception takes 71 and up)",
        },
    ),
    "--batch": ("batch", {"type": positive_int(), "help": "batch size (MesoNet 75, Xception 32)"}),
    "--lr": ("lr", {"type": float, "help": "learning rate (default 1e-3)"}),
    "--loss": ("loss", {"choices": ("bce", "mse"), "help": "MesoNet mse (as its authors), Xception bce"}),
    "--balance": (
        "balance",
        {
            "choices": ("weights", "sources", "sampling", "none"),
            "help": "class balance (default weights; sources = within each collection too)",
        },
    ),
    "--pseudo-fakes": (
        "pseudo_fakes",
        {
            "choices": ("off", "add", "only"),
            "nargs": "?",
            "const": "add",
            "help": "self-blended pseudo-fakes from real crops (flag alone = add)",
        },
    ),
    "--val-split": ("val_split", {"help": "validation split name (default val; '' for none)"}),
    "--train-splits": (
        "train_splits",
        {
            "type": lambda s: [p for p in s.split(",") if p],
            "help": "comma-separated training splits (default: all but val and test)",
        },
    ),
    "--finetune-lr": ("finetune_lr", {"type": float, "help": "Xception phase 2 learning rate (default lr / 10)"}),
    "--cache-variants": (
        "cache_variants",
        {"type": positive_int(16), "help": "with --cache-trunk: random variants cached per crop (default 2)"},
    ),
    "--steps-per-epoch": ("steps_per_epoch", {"type": positive_int(), "help": "batches per epoch"}),
    "--seed": ("seed", {"type": int, "help": "random seed (default 0)"}),
    "--workers": ("workers", {"type": positive_int(), "help": "data loading threads (default 2)"}),
    "--out": ("out", {"metavar": "RUN_DIR", "help": "run folder (default under the user cache)"}),
    "--cards-dir": ("cards_dir", {"help": "where the card is written (default: the user's cards folder)"}),
    "--weights-dir": ("weights_dir", {"help": "where the weights go (default: the user cache)"}),
}


def register(subparsers) -> None:
    """Add the ``train`` sub-command."""
    p = subparsers.add_parser(
        "train", help="train a model on a face-crop dataset", description=__doc__.split("\n\n")[1]
    )
    register_spec_flags(p)
    p.add_argument(
        "--progress",
        choices=("bar", "epoch", "none"),
        default="epoch",
        help="Keras progress output on stdout (default one line per epoch)",
    )
    p.set_defaults(run=run)


def register_spec_flags(p: argparse.ArgumentParser, exclude: tuple[str, ...] = ()) -> None:
    """Add --spec and one flag per spec field (also used by ``cross-validate``)."""
    p.add_argument("--spec", metavar="SPEC.json", help="training spec file (flags override it)")
    for flag, (dest, kwargs) in _FLAGS.items():
        if flag not in exclude:
            p.add_argument(flag, dest=dest, default=None, **kwargs)
    p.add_argument(
        "--augment",
        dest="augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="flip, JPEG, brightness/contrast and blur augmentation (default on)",
    )
    p.add_argument(
        "--float16",
        dest="float16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="store the weights as float16 (default: Xception yes, MesoNet no)",
    )
    p.add_argument(
        "--roundtrip",
        dest="roundtrip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random resolution/JPEG/blur round trip on every training crop (default off)",
    )
    p.add_argument(
        "--cache-trunk",
        dest="cache_trunk",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Xception: cache the frozen trunk's features and train only the top 1-2 blocks",
    )


def spec_from_args(args: argparse.Namespace):
    """The TrainSpec: the --spec file's values, overridden by the flags given."""
    from core.training.spec import read_spec, spec_from_dict

    base = read_spec(args.spec).to_dict() if args.spec else {}
    given = {dest: getattr(args, dest) for dest, _ in _FLAGS.values() if getattr(args, dest, None) is not None}
    for dest in ("augment", "float16", "roundtrip", "cache_trunk"):
        if getattr(args, dest) is not None:
            given[dest] = getattr(args, dest)
    data = {**base, **given}
    missing = [f"--{n}" for n in ("arch", "data", "tag") if not data.get(n)]
    if missing:
        raise UsageError(f"give --spec or {', '.join(missing)}")
    return spec_from_dict(data)


def run(args: argparse.Namespace) -> int:
    """Run the training; returns 0 when it succeeded or was cancelled."""
    settings = load_settings()
    spec = spec_from_args(args)
    from core.training.trainer import run_training

    verbose = {"bar": 1, "epoch": 2, "none": 0}[args.progress]
    # Keras writes its progress to stdout; the result lines below go there too, after it.
    with contextlib.redirect_stdout(sys.stderr) if verbose == 0 else contextlib.nullcontext():
        result = run_training(spec, settings, verbose=verbose)
    print(f"{result.state}: run folder {result.run_dir}")
    if result.card_id:
        print(f"card {result.card_id}: {result.card_path}")
        print(f"weights: {result.weights_path}")
        if result.best_value is not None:
            print(f"best {result.monitor} {result.best_value:.4f} at epoch {result.best_epoch}")
    return 0
