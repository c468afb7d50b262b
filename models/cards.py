"""Model cards: one JSON file per weight file, read, validated and written here.

A card says which architecture to build, how to preprocess, what the raw output means, which
weight file (by name and sha256) to load, the decision threshold and uncertain band, and how well
it did under which protocol, and optionally how its raw scores are calibrated. Shipped cards live
in ``models/cards/``; cards the user trains or adds live in ``Settings.user_cards_dir`` and override
a shipped card of the same id.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import DFIError
from core.files import write_text_atomic
from core.schema_check import first_problem
from models.architectures import FAMILY_PREPROCESS
from models.calibration import METHODS

SHIPPED_CARDS_DIR = Path(__file__).resolve().parent / "cards"

PREPROCESS = tuple(dict.fromkeys(FAMILY_PREPROCESS.values()))
OUTPUTS = ("p_fake", "p_real")
CALIBRATION_METHODS = METHODS  # the ones models.calibration.apply_calibration knows
# Keras load_weights reads these as weights only; a full-model format (.keras) is refused.
WEIGHT_SUFFIXES = (".h5", ".hdf5")


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

    The shape of every field is ``core/schemas/model_card.schema.json``'s; what ties fields
    together (and to the architectures table) is checked here.

    Args:
        data: the parsed JSON object.
        where: the file (or other origin) named in error messages.
        architectures: known architecture name -> its family.

    Raises:
        CardError: a field is missing or has a value the registry cannot use.
    """

    def fail(problem: str) -> CardError:
        return CardError(f"model card {where} is invalid: {problem}")

    problem = first_problem("model_card", data)
    if problem:
        raise fail(problem)
    if data["architecture"] not in architectures:
        raise fail(f"architecture {data['architecture']!r} is not one of {', '.join(architectures)}")
    if not data["id"].startswith(data["architecture"] + "."):
        raise fail(f"id {data['id']!r} must start with its architecture {data['architecture']!r}.")
    if data["family"] != architectures[data["architecture"]]:
        raise fail(f"family {data['family']!r} does not match architecture {data['architecture']!r}")
    raw_weights = data["weights"]
    if raw_weights["sha256"] is None and not raw_weights.get("note"):
        raise fail("weights.note must say why there is no file when weights.sha256 is null")
    lower, upper = (float(v) for v in data["band"])
    threshold = float(data["threshold"])
    if not lower <= threshold <= upper:
        raise fail(f"need 0 <= band lower <= threshold <= band upper <= 1, got {lower}, {threshold}, {upper}")
    return ModelCard(
        id=data["id"],
        family=data["family"],
        architecture=data["architecture"],
        display_name=data["display_name"],
        input_size=int(data["input_size"]),
        preprocess=data["preprocess"],
        output=data["output"],
        weights=WeightsSpec(
            file=raw_weights["file"],
            sha256=raw_weights["sha256"],
            url=raw_weights.get("url"),
            license=raw_weights["license"],
            note=raw_weights.get("note"),
        ),
        threshold=threshold,
        band=(lower, upper),
        trained_on=data["trained_on"],
        metrics=dict(data["metrics"]),
        created=data["created"],
        description=data["description"],
        calibration=None if data.get("calibration") is None else dict(data["calibration"]),
    )


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
