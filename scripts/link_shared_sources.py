"""Link every labelled clip of ``../shared/data`` into ``OUT/real|fake/<source>/``, one folder per source.

``python -m core cross-validate --by-source`` holds out one *source* at a time: the sub-folder a
clip sits in under ``real/`` or ``fake/``. This script makes that layout for the shared clips, so
that each held-out source is a whole dataset or generator family together with the real clips it
was made from (a fake never sits on the other side of a split from its own original):

- ``ffpp``: FaceForensics++ c23 and c40, with the DeepFakeDetection actors;
- ``dfdc``: the DFDC clips with the DFDC face-track crop clips;
- ``gen-edtalk``, ``gen-sadtalker``, ``gen-dreamtalk``, ``gen-deepfacelive``: ``generators/``, each
  generator with the recordings it was driven by;
- ``more-lipsync``, ``more-talkinghead``, ``more-motion``, ``more-faceswap``: ``more/``, by the
  family of the generator; a split group (a fake with its real source) is never divided.

Links, not copies: the clips stay where they are (their licences forbid redistribution).

    python scripts/link_shared_sources.py OUT [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# more/: generator (or the real input's generator name) -> family. A split group takes the family
# of its first fake, or of its real clip when it holds no fake.
MORE_FAMILIES = {
    "more-lipsync": ("wav2lip", "latentsync", "musetalk", "dinet", "hyperlips", "joygen"),
    "more-talkinghead": (
        "anitalker",
        "kdtalker",
        "styletalk",
        "playingforyou",
        "kling",
        "pcavs",
        "styleheat",
        "celebvhq",
    ),
    "more-motion": ("fomm", "motion-coseg-partswap", "partswap", "tpsmm", "fadm", "headgan"),
    "more-faceswap": ("ghost", "faceswap", "dfl"),
}
GENERATOR_PREFIXES = ("edtalk", "sadtalker", "dreamtalk", "deepfacelive")


def more_family(generator: str) -> str:
    """The family of a ``more/`` generator name such as ``wav2lip-hq`` or ``fomm-driving``."""
    for family, prefixes in MORE_FAMILIES.items():
        if any(generator == p or generator.startswith(p + "-") or generator.startswith(p + "_") for p in prefixes):
            return family
    raise ValueError(f"no family for more/ generator {generator!r}; add it to MORE_FAMILIES")


def clips_source(row: dict) -> str:
    """The source of a row of ``clips.csv`` (clips/, facecrop-clips/, generators/)."""
    path, dataset = row["path"], row["dataset"]
    if path.startswith("generators/"):
        name = Path(path).name
        prefix = next((p for p in GENERATOR_PREFIXES if name.startswith(p + "_")), None)
        if prefix is None:
            raise ValueError(f"unknown generator for {path}")
        return f"gen-{prefix}"
    if dataset.startswith("FaceForensics++"):
        return "ffpp"
    if dataset.startswith("DFDC"):
        return "dfdc"
    raise ValueError(f"unknown dataset {dataset!r} for {path}")


def plan(shared: Path) -> list[tuple[Path, str, str]]:
    """(clip path, label folder, source) for every labelled clip in ``shared``."""
    items = []
    with (shared / "clips.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            items.append((shared / row["path"], row["label"].lower(), clips_source(row)))
    with (shared / "more" / "clips.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[row["split_group"]].append(row)
    for members in groups.values():
        fakes = [r for r in members if r["label"] == "FAKE"]
        family = more_family((fakes or members)[0]["generator"])
        for row in members:
            items.append((shared / "more" / row["path"], row["label"].lower(), family))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to create (real/<source>/, fake/<source>/)")
    parser.add_argument("--shared", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    args = parser.parse_args(argv)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for path, label, source in plan(args.shared):
        if not path.is_file():
            print(f"error: {path} is listed but missing", file=sys.stderr)
            return 2
        link = args.out / label / source / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(path.resolve())
        counts[(source, label)] += 1
    for source in sorted({s for s, _ in counts}):
        print(f"{source}: {counts[(source, 'real')]} real, {counts[(source, 'fake')]} fake")
    return 0


if __name__ == "__main__":
    sys.exit(main())
