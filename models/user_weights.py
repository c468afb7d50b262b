"""Adding the user's own weights file: validate it against an architecture, then install it with a card.

Safety: an uploaded file is only ever read as *weights* (HDF5 arrays poured into a model that this
project builds itself); ``keras.models.load_model`` is never called, so nothing in the file can
define layers or run code. The bytes go to a private temp file (a fresh 0700 folder, the file 0600)
that is removed as soon as the check ends. Files over ``Settings.max_weights_upload_mb`` are refused
before anything reads them. The file is parsed (libhdf5, Keras' loader, one forward pass) only in a
child process (:mod:`models.weight_check`) with an address-space limit and a wall-clock timeout,
so a crafted file that crashes the parser or makes it allocate without end costs a plain message,
never the web server.

Two formats are accepted, told apart by their contents rather than their names, because Keras picks
its loader by the file suffix and the wrong one fails: the legacy Keras 2 ``save_weights`` HDF5
(root attribute ``layer_names``; the MesoNet authors' files) is installed as ``.h5``, the Keras 3
format (groups ``layers``/``vars``) as ``.weights.h5``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.errors import DFIError
from core.files import write_bytes_atomic
from core.settings import PROJECT_ROOT, Settings, get_settings
from models.architectures import ARCHITECTURES, FAMILY_OF, FAMILY_PREPROCESS
from models.cards import OUTPUTS, CardError, card_from_dict, write_card
from models.registry import get_card, list_models
from models.weight_check import RESULT_PREFIX

log = logging.getLogger(__name__)
_TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_FORMATS = {"legacy": (".h5", "Keras 2 weights file (.h5)"), "keras3": (".weights.h5", "Keras 3 weights file")}


class UserWeightsError(DFIError):
    """The file or the card details cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class WeightsCheck:
    """A file that loaded into an architecture: what it is and its identity."""

    architecture: str
    format: str  # "legacy" or "keras3"
    sha256: str
    size_bytes: int

    @property
    def suffix(self) -> str:
        return _FORMATS[self.format][0]

    @property
    def format_words(self) -> str:
        return _FORMATS[self.format][1]


def architecture_name(architecture: str) -> str:
    """The architecture as people write it (``mesoinception4`` -> ``MesoInception4``)."""
    arch = ARCHITECTURES.get(architecture)
    return arch.display_name if arch else architecture


# What one check may use. Measured (CPU only, as the check runs): the child peaks at about 2.7 GB
# of address space checking an Xception file (2.6 GB for MesoNet: TensorFlow reserves most of it
# at import) and takes 10-25 s on 2 busy cores; the limits leave more than twice that.
CHECK_MEMORY_LIMIT_BYTES = 6 * 1024**3
CHECK_TIMEOUT_S = 120.0


def _child_command(path: Path, architecture: str, memory_limit_bytes: int) -> list[str]:
    """The checker's command line, an argument list (a function, so tests can put another child in)."""
    return [sys.executable, "-m", "models.weight_check", str(path), architecture, str(memory_limit_bytes)]


def _child_env() -> dict[str, str]:
    """The server's environment, made predictable for the limit: no GPU (CUDA alone reserves more
    address space than the limit, and a check needs none), two compute threads and two malloc
    arenas (each thread's reservations count against the limit, and there is one per core)."""
    return {
        **os.environ,
        "CUDA_VISIBLE_DEVICES": "",
        "TF_NUM_INTRAOP_THREADS": "2",
        "TF_NUM_INTEROP_THREADS": "2",
        "MALLOC_ARENA_MAX": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }


def _run_check(path: Path, architecture: str, timeout_s: float, memory_limit_bytes: int) -> str:
    """The format the child found in ``path``; raises UserWeightsError with its reason, or when it
    crashed, ran out of its memory or time."""
    try:
        done = subprocess.run(
            _child_command(path, architecture, memory_limit_bytes),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout_s,
            env=_child_env(),
            cwd=PROJECT_ROOT,
        )
    except subprocess.TimeoutExpired:  # subprocess.run has killed the child by now
        raise UserWeightsError(
            f"checking this file took longer than {timeout_s:g} s and was stopped (is it really weights?)"
        ) from None
    lines = [
        line.removeprefix(RESULT_PREFIX)
        for line in done.stdout.decode(errors="replace").splitlines()
        if line.startswith(RESULT_PREFIX)
    ]
    try:
        result = json.loads(lines[-1]) if done.returncode == 0 and lines else None
    except ValueError:
        result = None
    if isinstance(result, dict) and isinstance(result.get("error"), str):
        raise UserWeightsError(result["error"])
    if isinstance(result, dict) and result.get("format") in _FORMATS:
        return result["format"]
    code = done.returncode
    how = f"signal {signal.Signals(-code).name}" if -code in signal.Signals._value2member_map_ else f"status {code}"
    last = (done.stderr.decode(errors="replace").strip().splitlines() or ["(nothing on stderr)"])[-1]
    log.warning("the weights checker stopped with %s: %s", how, last[:300])  # for whoever runs the server
    raise UserWeightsError(
        f"reading this file made the checker stop ({how}): it is damaged, or needs more memory than a check may use"
    )


def check_weights(
    data: bytes,
    architecture: str,
    settings: Settings | None = None,
    *,
    timeout_s: float = CHECK_TIMEOUT_S,
    memory_limit_bytes: int = CHECK_MEMORY_LIMIT_BYTES,
) -> WeightsCheck:
    """Validate uploaded bytes by building ``architecture`` and loading them into it, weights only,
    in a child process (see the module docstring).

    Args:
        data: the file's bytes.
        architecture: a key of ``models.ARCHITECTURES`` (``meso4``, ``mesoinception4``, ``xception``).
        settings: the size limit.
        timeout_s: the child is killed after this long.
        memory_limit_bytes: the child's address-space limit.

    Returns:
        The check: format, sha256 and size.

    Raises:
        UserWeightsError: too large or empty, unknown architecture, not a Keras weights file, weights
            of another architecture, weights that give no usable output, or a file whose check
            crashed or ran out of its time or memory.
    """
    settings = settings or get_settings()
    if architecture not in ARCHITECTURES:
        raise UserWeightsError(f"unknown architecture {architecture!r}: must be one of {', '.join(ARCHITECTURES)}")
    if not data:
        raise UserWeightsError("the file is empty")
    limit = settings.max_weights_upload_mb * 1024 * 1024
    if len(data) > limit:
        raise UserWeightsError(
            f"the file is {len(data) / 2**20:.0f} MB; the limit is {settings.max_weights_upload_mb} MB"
        )
    folder = Path(tempfile.mkdtemp(prefix="dfi-weights-"))
    path = folder / "upload"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        kind = _run_check(path, architecture, timeout_s, memory_limit_bytes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return WeightsCheck(architecture, kind, hashlib.sha256(data).hexdigest(), len(data))


def install_user_weights(
    data: bytes,
    architecture: str,
    tag: str,
    display_name: str,
    output: str,
    license: str,
    trained_on: str,
    description: str = "",
    source_name: str = "",
    settings: Settings | None = None,
):
    """Validate the file, then save it in the user weights folder with a card in the user cards folder.

    Args:
        data: the weights file's bytes.
        architecture: the architecture it was trained for.
        tag: the second half of the card id ``<architecture>.<tag>`` (a-z, 0-9, _ and -).
        display_name: the name people see.
        output: ``p_fake`` or ``p_real`` (the MesoNet authors' files output P(real)).
        license: the licence of the weights.
        trained_on: what the weights learnt from.
        description: free text; a plain default is written when empty.
        source_name: the uploaded file's name, for the default description.
        settings: where to install.

    Returns:
        The new ModelCard (as read back from its file).

    Raises:
        UserWeightsError: invalid details, an id or file name already taken, or a bad file.
    """
    settings = settings or get_settings()
    tag = tag.strip()
    if not _TAG_RE.match(tag):
        raise UserWeightsError(
            "the short name must be 1-40 lowercase letters, digits, _ or -, starting with a letter or digit"
        )
    if output not in OUTPUTS:
        raise UserWeightsError(f"the output must be one of {', '.join(OUTPUTS)}")
    for words, value in (("display name", display_name), ("licence", license), ("training data", trained_on)):
        if not value.strip():
            raise UserWeightsError(f"please fill in the {words}")
    card_id = f"{architecture}.{tag}"
    if architecture in ARCHITECTURES and card_id in {card.id for card in list_models(settings)}:
        raise UserWeightsError(f"a model called {card_id} already exists; pick another short name")
    check = check_weights(data, architecture, settings)
    file_name = f"{architecture}_{tag}{check.suffix}"
    # A same-named file earlier on the search path would shadow this one (and fail its hash check).
    taken = [folder / file_name for folder in settings.weights_search_path() if (folder / file_name).exists()]
    if taken:
        raise UserWeightsError(
            f"a weights file named {file_name} already exists at {taken[0]}; pick another short name"
        )
    family = ARCHITECTURES[architecture].family
    card_data = {
        "id": card_id,
        "family": family,
        "architecture": architecture,
        "display_name": display_name.strip(),
        "input_size": ARCHITECTURES[architecture].input_size,
        "preprocess": FAMILY_PREPROCESS[family],
        "output": output,
        "weights": {"file": file_name, "sha256": check.sha256, "url": None, "license": license.strip()},
        "threshold": 0.5,
        "band": [0.35, 0.65],
        "trained_on": trained_on.strip(),
        "metrics": {},
        "created": date.today().isoformat(),
        "description": description.strip()
        or (
            f"{architecture_name(architecture)} weights added by a user on the Models page"
            + (f" from the file {Path(source_name).name}" if source_name else "")
            + f" ({check.format_words}, sha256 {check.sha256[:12]}…). Not measured by this project."
        ),
    }
    try:
        card = card_from_dict(card_data, f"the new card {card_id}", FAMILY_OF)
    except CardError as err:
        raise UserWeightsError(err.message) from None
    target = write_bytes_atomic(settings.cache_dir / "weights" / file_name, data, mode=0o600)
    try:
        write_card(card, settings.user_cards_dir, FAMILY_OF)
    except Exception:
        target.unlink(missing_ok=True)  # no weights without the card that names them
        raise
    return get_card(card_id, settings)
