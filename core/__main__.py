"""The command line: ``python -m core <command> …``.

Sub-commands are the modules of :mod:`core.commands` (found with pkgutil, so adding one is adding a
file): each exposes ``register(subparsers)``, which adds its parser and sets ``run`` as the handler.
Bad input (a DFIError or a bad argument) prints exactly one line ``error: …`` on stderr and exits 2;
an unexpected exception prints ``error: internal error: …`` and exits 1 (the traceback only with
``DFI_DEBUG=1``). Output meant for programs goes to stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import traceback
from collections.abc import Sequence

import core
from core import commands
from core.commands import UsageError, one_line
from core.errors import DFIError

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one ``error: …`` line (no usage block) and exit 2."""

    def error(self, message: str):  # noqa: D102 (argparse API)
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every sub-command found in :mod:`core.commands`."""
    parser = _Parser(prog="python -m core", description="Deepfake Inspector: is the face in this clip real?")
    parser.add_argument("--version", action="version", version=f"deepfake-inspector {core.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit status (0 ok, 1 internal error, 2 bad input)."""
    debug = os.environ.get("DFI_DEBUG") == "1"
    try:
        args = build_parser().parse_args(argv)
        _configure_logging(verbose=args.verbose or debug)
        return int(args.run(args))
    except DFIError as exc:
        print(f"error: {one_line(exc.message)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last line of defence: one line, never a traceback by default
        if debug:
            traceback.print_exc()
        print(f"error: internal error: {one_line(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return EXIT_INTERNAL


def _configure_logging(verbose: bool) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_dfi", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handler._dfi = True  # so a second main() in one process does not add another
        root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # Keep library chatter (TensorFlow, absl, h5py) out of stderr unless debugging.
    for name in ("tensorflow", "absl", "h5py", "keras"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)


def _silence_native_stderr() -> None:
    """Send native (C++) writes on fd 2 to /dev/null, keeping Python's sys.stderr on the terminal.

    TensorFlow's C++ logs ("oneDNN custom operations are on", "Could not find cuda drivers") are
    written before absl logging is initialised, so TF_CPP_MIN_LOG_LEVEL does not stop them; they
    would break the promise of a single ``error:`` line. Python-level output is unaffected.
    """
    if not core._TF_LOG_LEVEL_FROM_USER:  # core/__init__.py only set its own default, "2"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")
    except OSError:
        pass  # no usable fd 2 (rare); native noise then stays, nothing breaks


if __name__ == "__main__":
    if os.environ.get("DFI_DEBUG") != "1":
        _silence_native_stderr()
    sys.exit(main())
