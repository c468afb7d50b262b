"""``python -m core models [--download ID] [--json]``: the model registry and its weights.

Lists every card: id, family, whether it is a default, whether its weights are present (and where)
or missing (and where it looked), whether the sha256 matches, and where the weights come from
under which licence. ``--download ID`` fetches one card's weights from its URL, checked by sha256;
``--download imagenet-xception`` fetches Keras' ImageNet Xception file (training's ``imagenet``
start) into the Keras cache (or the path DFI_IMAGENET_WEIGHTS names), checked by Keras' md5.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.commands import load_settings

_STATE_WORDS = {"present": "present", "missing": "missing", "hash_mismatch": "hash mismatch"}
_SHA_WORDS = {"present": "ok", "missing": "-", "hash_mismatch": "WRONG"}


def register(subparsers) -> None:
    """Add the ``models`` sub-command."""
    p = subparsers.add_parser("models", help="list model cards and their weights", description=__doc__.split("\n\n")[1])
    p.add_argument(
        "--download",
        metavar="ID",
        help="download this card's weights (checked by sha256), or imagenet-xception: "
        "Keras' ImageNet Xception file for training (checked by Keras' md5)",
    )
    p.add_argument("--json", action="store_true", help="print the table as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the registry (after a download, when asked); returns 0."""
    settings = load_settings()
    if args.download:
        print(_download(args.download, settings), file=sys.stderr)
    rows = registry_rows(settings)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
    return 0


def _download(wanted: str, settings) -> str:
    """Fetch a card's weights or the ImageNet Xception file; returns the line saying where it is."""
    import models
    from models.download import IMAGENET_XCEPTION_ID, download_imagenet_xception

    if wanted == IMAGENET_XCEPTION_ID:
        if settings.imagenet_weights_file().is_file():
            return f"{IMAGENET_XCEPTION_ID}: already at {settings.imagenet_weights_file()}"
        path = download_imagenet_xception(settings, _progress_printer())
        return f"{IMAGENET_XCEPTION_ID}: weights at {path} (md5 ok)"
    card = models.get_card(wanted, settings)  # UnknownModelError lists the valid ids
    path = models.download_weights(card.id, settings, _progress_printer())
    return f"{card.id}: weights at {path} (sha256 ok)"


def _progress_printer():
    """A progress callback drawing ``downloaded 12 of 80 MB`` in place, only on a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int | None) -> None:
        of = f" of {total / 1e6:.0f}" if total else ""
        end = "\n" if total and done >= total else ""
        print(f"\rdownloaded {done / 1e6:.0f}{of} MB", end=end, file=sys.stderr, flush=True)

    return show


def registry_rows(settings) -> list[dict]:
    """One plain dict per card: what the table shows."""
    import models

    defaults = set(models.default_model_ids(settings))
    rows = []
    for card in models.list_models(settings):
        status = models.weights_status(card, settings)
        rows.append(
            {
                "id": card.id,
                "family": card.family,
                "default": card.id in defaults,
                "weights": status.state,
                "sha256_ok": status.state == "present",
                "path": str(status.path) if status.path else None,
                "searched": [str(p) for p in status.searched],
                "message": status.message,
                "file": card.weights.file,
                "url": card.weights.url,
                "license": card.weights.license,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """The registry as an aligned text table, each card followed by where its weights are."""
    header = ("ID", "FAMILY", "DEFAULT", "WEIGHTS", "SHA256", "LICENCE")
    table = [header] + [
        (
            r["id"],
            r["family"],
            "yes" if r["default"] else "",
            _STATE_WORDS[r["weights"]],
            _SHA_WORDS[r["weights"]],
            r["license"],
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header))]
    out = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths)).rstrip()]
    for row, values in zip(rows, table[1:]):
        out.append("  ".join(str(v).ljust(w) for v, w in zip(values, widths)).rstrip())
        where = row["path"] if row["weights"] == "present" else row["message"]
        out.append(f"    {where}")
        if row["url"]:
            out.append(f"    source: {row['url']}")
    if not rows:
        out.append("(no model cards found)")
    return "\n".join(out)
