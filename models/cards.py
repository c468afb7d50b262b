"""Model cards: one JSON file per weight file, read, validated and written here.

A card says which architecture to build, how to preprocess, what the raw output means, which
weight file (by name and sha256) to load, the decision threshold and uncertain band, and how well
it did under which protocol, and optionally how its raw scores are calibrated. Shipped cards live
in ``models/cards/``; cards the user trains or adds live in ``Settings.user_cards_dir`` and override
a shipped card of the same id.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import DFIError
from core.files import write_text_atomic
from models.architectures import FAMILY_PREPROCESS
from models.calibration import METHODS

SHIPPED_CARDS_DIR = Path(__file__).resolve().parent / "cards"

PREPROCESS = tuple(dict.fromkeys(FAMILY_PREPROCESS.values()))
OUTPUTS = ("p_fake", "p_real")
CALIBRATION_METHODS = METHODS  # the ones models.calibration.apply_calibration knows
_CALIBRATION_KEYS = ("method", "a", "b", "n", "fitted_on")
# Keras load_weights reads these as weights only; a full-model format (.keras) is refused.
WEIGHT_SUFFIXES = (".h5", ".hdf5")
_ID_RE = re.compile(r"^[a-z0-9_]+\.[a-z0-9_-]+$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_REQUIRED = (
    "id",
    "family",
    "architecture",
    "display_name",
    "input_size",
    "preprocess",
    "output",
    "weights",
    "threshold",
    "band",
    "trained_on",
    "metrics",
    "created",
    "description",
)


class CardError(DFIError):
    """A card file that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class WeightsSpec:
    """The weight file a card loads. ``sha256`` None means none exists yet (``note`` says why)."""

    file: str
    sha256: str | None
    url: str | None
    license: str
    note: str | None = None


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to build, load, run and explain one detector."""

    id: str
    family: str
    architecture: str
    display_name: str
    input_size: int
    preprocess: str
    output: str
    weights: WeightsSpec
    threshold: float
    band: tuple[float, float]
    trained_on: str
    metrics: dict[str, Any]
    created: str
    description: str
    # Platt scaling of the raw p_fake ({"method": "platt", "a", "b", ...}); None = scores as they are.
    calibration: dict[str, Any] | None = None
    source: Path | None = field(default=None, compare=False)  # the file it was read from

    def to_dict(self) -> dict[str, Any]:
        """The card as plain JSON types, in the layout of its file."""
        data = asdict(self)
        data.pop("source")
        data["band"] = [float(self.band[0]), float(self.band[1])]
        if data["weights"]["note"] is None:
            data["weights"].pop("note")
        if data["calibration"] is None:
            # Omitted rather than null, so a card without calibration rewrites byte-identically.
            data.pop("calibration")
        return data


def card_from_dict(data: dict[str, Any], where: str, architectures: dict[str, str]) -> ModelCard:
    """Validate a parsed card and build a ModelCard.

    Args:
        data: the parsed JSON object.
        where: the file (or other origin) named in error messages.
        architectures: known architecture name -> its family.

    Raises:
        CardError: a field is missing or has a value the registry cannot use.
    """

    def fail(problem: str) -> CardError:
        return CardError(f"model card {where} is invalid: {problem}")

    if not isinstance(data, dict):
        raise fail("it is not a JSON object")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise fail(f"missing field(s) {', '.join(missing)}")
    if not isinstance(data["id"], str) or not _ID_RE.match(data["id"]):
        raise fail(f"id {data['id']!r} is not of the form <architecture>.<tag> (a-z, 0-9, _ -)")
    if data["architecture"] not in architectures:
        raise fail(f"architecture {data['architecture']!r} is not one of {', '.join(architectures)}")
    if not data["id"].startswith(data["architecture"] + "."):
        raise fail(f"id {data['id']!r} must start with its architecture {data['architecture']!r}.")
    if data["family"] != architectures[data["architecture"]]:
        raise fail(f"family {data['family']!r} does not match architecture {data['architecture']!r}")
    for key, allowed in (("preprocess", PREPROCESS), ("output", OUTPUTS)):
        if data[key] not in allowed:
            raise fail(f"{key} {data[key]!r} is not one of {', '.join(allowed)}")
    if not isinstance(data["input_size"], int) or not 16 <= data["input_size"] <= 1024:
        raise fail("input_size must be a whole number of pixels between 16 and 1024")
    weights = _weights_from_dict(data["weights"], fail)
    threshold, band = _decision_from_dict(data, fail)
    if not isinstance(data["metrics"], dict) or (data["metrics"] and "protocol" not in data["metrics"]):
        raise fail("metrics must be an object that names its protocol")
    for key in ("display_name", "trained_on", "created", "description"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(f"{key} must be a non-empty string")
    calibration = _calibration_from_dict(data.get("calibration"), fail)
    return ModelCard(
        id=data["id"],
        family=data["family"],
        architecture=data["architecture"],
        display_name=data["display_name"],
        input_size=data["input_size"],
        preprocess=data["preprocess"],
        output=data["output"],
        weights=weights,
        threshold=threshold,
        band=band,
        trained_on=data["trained_on"],
        metrics=dict(data["metrics"]),
        created=data["created"],
        description=data["description"],
        calibration=calibration,
    )


def _weights_from_dict(raw: Any, fail) -> WeightsSpec:
    if not isinstance(raw, dict) or not {"file", "sha256", "license"} <= raw.keys():
        raise fail("weights must be an object with file, sha256 and license")
    name = raw["file"]
    # A bare file name only: a card must not be able to point the loader anywhere else on disk.
    if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
        raise fail(f"weights.file {name!r} must be a plain file name")
    if not name.endswith(WEIGHT_SUFFIXES):
        raise fail(f"weights.file {name!r} must be a weights-only HDF5 file ({', '.join(WEIGHT_SUFFIXES)})")
    sha = raw["sha256"]
    if sha is not None and (not isinstance(sha, str) or not _SHA256_RE.match(sha)):
        raise fail("weights.sha256 must be 64 lowercase hex digits (or null when no file exists yet)")
    if sha is None and not raw.get("note"):
        raise fail("weights.note must say why there is no file when weights.sha256 is null")
    url = raw.get("url")
    if url is not None and (not isinstance(url, str) or not url.startswith(("https://", "http://"))):
        raise fail("weights.url must be an http(s) address or null")
    return WeightsSpec(file=name, sha256=sha, url=url, license=str(raw["license"]), note=raw.get("note"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _calibration_from_dict(raw: Any, fail) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise fail("calibration must be an object or null")
    unknown = sorted(set(raw) - set(_CALIBRATION_KEYS))
    if unknown:
        raise fail(
            f"calibration has unknown field(s) {', '.join(unknown)} (it may hold {', '.join(_CALIBRATION_KEYS)})"
        )
    if raw.get("method") not in CALIBRATION_METHODS:
        raise fail(f"calibration.method {raw.get('method')!r} is not one of {', '.join(CALIBRATION_METHODS)}")
    # A slope <= 0 would reverse or flatten the ranking: the calibrated score must still rise
    # with the network's.
    if not _is_number(raw.get("a")) or raw["a"] <= 0:
        raise fail("calibration.a must be a number above 0")
    if not _is_number(raw.get("b")):
        raise fail("calibration.b must be a number")
    if "n" in raw and (not isinstance(raw["n"], int) or isinstance(raw["n"], bool) or raw["n"] < 0):
        raise fail("calibration.n must be a whole number of clips")
    if "fitted_on" in raw and not isinstance(raw["fitted_on"], str):
        raise fail("calibration.fitted_on must be a string")
    return dict(raw)


def _decision_from_dict(data: dict[str, Any], fail) -> tuple[float, tuple[float, float]]:
    threshold, band = data["threshold"], data["band"]
    if not isinstance(threshold, (int, float)) or isinstance(threshold, bool):
        raise fail("threshold must be a number")
    if not (isinstance(band, list) and len(band) == 2 and all(isinstance(v, (int, float)) for v in band)):
        raise fail("band must be [lower, upper]")
    lower, upper = float(band[0]), float(band[1])
    if not 0.0 <= lower <= float(threshold) <= upper <= 1.0:
        raise fail(f"need 0 <= band lower <= threshold <= band upper <= 1, got {lower}, {threshold}, {upper}")
    return float(threshold), (lower, upper)


def read_card(path: Path, architectures: dict[str, str]) -> ModelCard:
    """Read and validate one card file; its id must match its file name (``<id>.json``).

    Raises:
        CardError: unreadable JSON or an invalid card, naming the file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"model card {path} cannot be read: {exc}") from None
    card = card_from_dict(data, str(path), architectures)
    if path.name != f"{card.id}.json":
        raise CardError(f"model card {path} is invalid: its id {card.id!r} needs the file name {card.id}.json")
    return replace(card, source=path)


def read_cards(folders: list[Path], architectures: dict[str, str]) -> dict[str, ModelCard]:
    """All cards in ``folders``, sorted by id; a later folder's card replaces an earlier one's.

    A folder that does not exist is skipped (the user's folder usually does not).
    """
    cards: dict[str, ModelCard] = {}
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                card = read_card(path, architectures)
                cards[card.id] = card
    return dict(sorted(cards.items()))


def write_card(card: ModelCard, folder: Path, architectures: dict[str, str]) -> Path:
    """Validate ``card`` and write it as ``folder/<id>.json`` (atomically); returns the path."""
    data = card.to_dict()
    card_from_dict(data, f"{card.id} (being written)", architectures)
    folder.mkdir(parents=True, exist_ok=True)
    return write_text_atomic(folder / f"{card.id}.json", json.dumps(data, indent=2) + "\n")
