"""The architectures the registry can build: one explicit table, and the facts derived from it.

``ARCHITECTURES`` maps an architecture name to its family, native input size and builder. Adding a
model is one builder file in ``models/networks/`` plus one line here plus a card in
``models/cards/``. Builders are named as ``"module:function"`` and imported on first use, so listing
models and checking weights (the command line, the Detectors page) never pays for importing Keras.
Nothing else restates these facts: the family of an architecture, the family names people read and
the families in display order all come from here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Architecture:
    """How to build one architecture: its family, native input size and builder."""

    family: str
    display_name: str  # as people write it: "MesoInception4"
    summary: str  # what a person choosing it should know, in a few words
    input_size: int  # native input side
    builder: str  # "module:function" returning an uncompiled keras.Model
    # Smallest input side the builder accepts through its ``input_size`` argument, for networks
    # that end in global pooling (Xception); None = the native size only (MesoNet's Flatten layer
    # fixes its input at 256).
    min_input: int | None = None

    def accepts(self, size: int) -> bool:
        """Whether a card or training run may use this input side."""
        if self.min_input is None:
            return size == self.input_size
        return self.min_input <= size <= 1024

    def build(self, input_size: int | None = None) -> keras.Model:
        """A fresh, weightless model at ``input_size`` (default: the native size)."""
        module_name, function_name = self.builder.split(":")
        builder = getattr(importlib.import_module(module_name), function_name)
        if self.min_input is None or input_size in (None, self.input_size):
            return builder()
        return builder(input_size=input_size)


ARCHITECTURES: dict[str, Architecture] = {
    "xception": Architecture(
        "xception",
        "Xception",
        "large and accurate, slow without a GPU (21M weights)",
        299,
        "models.networks.xception:build_xception",
        min_input=71,
    ),
    "meso4": Architecture(
        "mesonet", "Meso4", "small and fast (28k weights)", 256, "models.networks.mesonet:build_meso4"
    ),
    "mesoinception4": Architecture(
        "mesonet", "MesoInception4", "small (24k weights)", 256, "models.networks.mesonet:build_mesoinception4"
    ),
}

# architecture -> family, the map card validation and every card writer use.
FAMILY_OF: dict[str, str] = {name: arch.family for name, arch in ARCHITECTURES.items()}
# Families in table order (the order pages and defaults list them).
FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(FAMILY_OF.values()))
# How each family scales pixels before the network: "unit" is x / 255, "xception" x / 127.5 - 1.
FAMILY_PREPROCESS: dict[str, str] = {"mesonet": "unit", "xception": "xception"}
# Short names a non-technical reader can hold on to, per family.
FAMILY_NAMES: dict[str, str] = {"xception": "Xception", "mesonet": "MesoNet"}
