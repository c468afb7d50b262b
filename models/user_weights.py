"""Adding the user's own weights file: validate it against an architecture, then install it with a card.

Safety: an uploaded file is only ever read as *weights* (HDF5 arrays poured into a model that this
project builds itself); ``keras.models.load_model`` is never called, so nothing in the file can
define layers or run code. The bytes go to a private temp file (a fresh 0700 folder, the file 0600)
that is removed as soon as the check ends. Files over ``Settings.max_weights_upload_mb`` are refused
before anything reads them.

Two formats are accepted, told apart by their contents rather than their names, because Keras picks
its loader by the file suffix and the wrong one fails: the legacy Keras 2 ``save_weights`` HDF5
(root attribute ``layer_names``; the MesoNet authors' files) is installed as ``.h5``, the Keras 3
format (groups ``layers``/``vars``) as ``.weights.h5``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.errors import DFIError
from core.files import write_bytes_atomic
from core.settings import Settings, get_settings
from models.architectures import ARCHITECTURES, FAMILY_OF, FAMILY_PREPROCESS
from models.cards import OUTPUTS, CardError, card_from_dict, write_card
from models.registry import get_card, list_models

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


def _sniff_format(data: bytes) -> str:
    """``legacy`` or ``keras3`` from the HDF5 layout; raises UserWeightsError for anything else."""
    import h5py

    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            if "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs):
                return "legacy"
            if "vars" in f or "layers" in f:
                return "keras3"
    except (OSError, ValueError):
        raise UserWeightsError("this file is not a Keras weights file (it is not HDF5 data)") from None
    raise UserWeightsError("this HDF5 file holds no Keras weights (no layer names, no saved layers)")


def check_weights(data: bytes, architecture: str, settings: Settings | None = None) -> WeightsCheck:
    """Validate uploaded bytes by building ``architecture`` and loading them into it, weights only.

    Args:
        data: the file's bytes.
        architecture: a key of ``models.ARCHITECTURES`` (``meso4``, ``mesoinception4``, ``xception``).
        settings: the size limit.

    Returns:
        The check: format, sha256 and size.

    Raises:
        UserWeightsError: too large or empty, unknown architecture, not a Keras weights file, weights
            of another architecture, or weights that give no usable output.
    """
    import hashlib

    import numpy as np

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
    kind = _sniff_format(data)
    folder = Path(tempfile.mkdtemp(prefix="dfi-weights-"))
    path = folder / f"upload{_FORMATS[kind][0]}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        model = ARCHITECTURES[architecture].build()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Keras warns per skipped layer before it raises
                model.load_weights(str(path))
        except (ValueError, OSError, KeyError, TypeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserWeightsError(
                f"these weights do not fit the {architecture_name(architecture)} architecture ({reason}); "
                "pick the architecture the file was trained for"
            ) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    # One forward pass on a mid-grey image: weights full of NaN load fine but can never give a score.
    size = ARCHITECTURES[architecture].input_size
    out = np.asarray(model.predict_on_batch(np.full((1, size, size, 3), 0.5, np.float32)), np.float64)
    if out.size != 1 or not np.isfinite(out).all() or not 0.0 <= float(out.ravel()[0]) <= 1.0:
        raise UserWeightsError("these weights load, but the model gives no usable score with them (not a probability)")
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
