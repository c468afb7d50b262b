"""Sub-commands of ``python -m core``: one module each, found by ``core.__main__`` with pkgutil.

A command module exposes ``register(subparsers)``, which adds its parser and sets the handler with
``parser.set_defaults(run=run)``; ``run(args) -> int`` returns the exit status. Modules whose name
starts with ``_`` are helpers, not commands. Keep imports at the top of command modules light:
every command module is imported to build the parser, so TensorFlow loads only inside ``run``.
"""

from __future__ import annotations

import argparse
import re

from core.errors import DFIError
from core.settings import Settings, get_settings

# The names of core.engine.verdicts.AGGREGATIONS, written out: importing it would load numpy while the
# parser is built, which every command (and --help) would pay for.
AGGREGATION_CHOICES = ("mean", "median", "max")


class UsageError(DFIError):
    """A bad command-line argument (exit 2, one ``error:`` line)."""


def one_line(text: str) -> str:
    """Collapse whitespace (newlines included) so a message prints as exactly one line."""
    return re.sub(r"\s+", " ", str(text)).strip() or "unknown error"


def positive_int(limit: int | None = None):
    """An argparse ``type`` for a whole number >= 1 (and <= ``limit`` when given)."""

    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number") from None
        if value < 1 or (limit is not None and value > limit):
            bound = f"between 1 and {limit}" if limit is not None else "at least 1"
            raise argparse.ArgumentTypeError(f"{value} is out of range: must be {bound}")
        return value

    return parse


def model_id_list(raw: str) -> list[str]:
    """An argparse ``type`` for ``ID,ID,…`` (spaces ignored, at least one id)."""
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("give at least one model id, e.g. --models meso4.df")
    return ids


def load_settings() -> Settings:
    """Settings from the environment; a malformed ``DFI_*`` variable is the user's input error."""
    try:
        return get_settings()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def add_frames_option(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """``--frames N``: frames sampled per clip, 1 to the configured maximum."""
    parser.add_argument(
        "--frames",
        type=positive_int(settings.max_frames),
        default=settings.default_frames,
        help=f"frames sampled per clip (default {settings.default_frames})",
    )


def add_models_option(parser: argparse.ArgumentParser) -> None:
    """``--models ID,ID``: model card ids; None means the default of each family."""
    parser.add_argument(
        "--models",
        type=model_id_list,
        default=None,
        metavar="ID,ID",
        help="model card ids (default: the best available of each family)",
    )


def add_aggregation_option(parser: argparse.ArgumentParser) -> None:
    """``--aggregation``: how a person's per-frame scores combine into one."""
    parser.add_argument(
        "--aggregation",
        choices=AGGREGATION_CHOICES,
        default="mean",
        help="how a person's per-frame scores combine (default mean)",
    )


def add_scan_backend_options(parser: argparse.ArgumentParser, settings: Settings) -> None:
    """``--workers N``, ``--ray ADDRESS`` and ``--no-progress``: where a scan of many clips runs."""
    parser.add_argument(
        "--workers",
        type=positive_int(1024),
        default=None,
        help="worker processes (default: one per core, as many as the memory holds; on Ray: the cluster's CPUs)",
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=settings.ray_address or None,
        help="the Ray cluster's dashboard address, e.g. http://HEAD:8265 (default DFI_RAY_ADDRESS; none = this computer)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
