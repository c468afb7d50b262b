"""Source groups and splits: which clips must stay together, and which split each group goes to.

A detector evaluated on frames of clips it was trained on measures memory, not detection; and a
fake evaluated beside its own source video's real frames in training leaks the identity and the
scene. So splits are made over *groups* of clips that share a source, never over frames:

- FaceForensics++: ``519`` is an original, ``519_515`` is a fake made on target video 519 (with the
  face of 515): both belong to group ``ff:519`` (the target ``T`` of ``T_S``), whatever prefix the
  file carries (``ffpp_Deepfakes_c40_519_515``).
- DeepFakeDetection (FF++ ``actors``): ``01__kitchen_pan`` and the fakes ``01_02__kitchen_pan__X``
  show actor 01: group ``dfd:01``.
- DFDC: the 10-letter video id, with any face-track suffix (``aejvkfbtxs_0_1``) or crop-frame suffix
  (``abarnvbtwb-003-00``) dropped: group ``dfdc:aejvkfbtxs``.
- Anything else is its own group (its file stem).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Sequence

from sklearn.model_selection import StratifiedGroupKFold

SPLITS = ("train", "val", "test")

# Ordered: the first rule that matches names the group. The dataset patterns apply to a bare name
# (``519_515``) or to one carrying the dataset's prefix (``ffpp_…``, ``dfdc_…``), so that unrelated
# names that merely end in digits (``radio34_000``, ``…_512``) stay groups of their own.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # FF++ original 519 or fake T_S 519_515 -> target 519.
    (re.compile(r"^(?:ffpp_.*?_)?(\d{3})(?:_\d{3})?$"), "ff:{0}"),
    # DFD actor 01__scene, or a DFD fake 01_02__scene__hash -> actor/target 01.
    (re.compile(r"^(?:ffpp_.*?_)?(\d{2})(?:_\d{2})?__"), "dfd:{0}"),
    # DFDC video id, with a face-track (_0_1) or crop-frame (-003-00) suffix.
    (re.compile(r"^(?:dfdc_(?:.*_)?)?([a-z]{10})(?:_\d+_\d+|-\d+-\d+)?$"), "dfdc:{0}"),
)


def source_group(stem: str) -> str:
    """The group of a clip or image, from its file stem (name without extension).

    Args:
        stem: e.g. ``ffpp_Deepfakes_c40_183_253``, ``519``, ``dfdc_facecrop_aejvkfbtxs_0_1``.

    Returns:
        A group key such as ``ff:183``, ``dfd:01``, ``dfdc:aejvkfbtxs``, or ``stem`` itself.
    """
    name = stem.strip().lower()
    for pattern, template in _RULES:
        match = pattern.search(name)
        if match:
            return template.format(*match.groups())
    return name


def _rank(seed: int, group: str) -> str:
    # A hash rather than random.shuffle: a group's position does not depend on the other groups,
    # so adding clips to a folder moves as few groups as possible between splits.
    return hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()


def assign_splits(
    groups: Sequence[str],
    labels: Sequence[int],
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> dict[str, str]:
    """Assign every group to train, val or test, deterministically from ``seed``.

    Groups are stratified by what they hold (real only, fake only, both), then, in hash order,
    each group joins the split furthest below its share of clips, so even a small set gets every
    split that has a non-zero fraction (when there are enough groups).

    Args:
        groups: the group of each clip (one entry per clip).
        labels: the label of each clip (1 = fake, 0 = real), same length.
        seed: changes the assignment; the same seed and clips give the same splits.
        fractions: shares of clips for (train, val, test); must sum to 1.

    Returns:
        group -> split name.

    Raises:
        ValueError: fractions are negative or do not sum to 1, or lengths differ.
    """
    if len(groups) != len(labels):
        raise ValueError("one label per clip is needed")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    sizes: dict[str, int] = defaultdict(int)
    kinds: dict[str, set[int]] = defaultdict(set)
    for group, label in zip(groups, labels):
        sizes[group] += 1
        kinds[group].add(int(label))
    strata: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for group in sizes:
        strata[tuple(sorted(kinds[group]))].append(group)

    result: dict[str, str] = {}
    for members in strata.values():
        total = sum(sizes[g] for g in members)
        filled = dict.fromkeys(SPLITS, 0)
        for group in sorted(members, key=lambda g: _rank(seed, g)):
            # Largest deficit first; ties go to the earlier split (train before val before test).
            deficits = [(fractions[i] * total - filled[s], -i) for i, s in enumerate(SPLITS)]
            split = SPLITS[-max(deficits)[1]]
            result[group] = split
            filled[split] += sizes[group]
    return result


def assign_folds(groups: Sequence[str], labels: Sequence[int], folds: int, seed: int = 0) -> dict[str, int]:
    """Assign every group to one of ``folds`` cross-validation folds (sklearn StratifiedGroupKFold).

    Args:
        groups: the group of each clip.
        labels: the label of each clip, same length.
        folds: number of folds, at least 2 and at most the number of groups.
        seed: shuffling seed.

    Returns:
        group -> fold number in ``range(folds)``.

    Raises:
        ValueError: fewer groups than folds.
    """
    n_groups = len(set(groups))
    if folds < 2 or folds > n_groups:
        raise ValueError(f"need 2 <= folds <= number of source groups ({n_groups}), got {folds}")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    result: dict[str, int] = {}
    for fold, (_, test_idx) in enumerate(splitter.split(list(groups), list(labels), list(groups))):
        for i in test_idx:
            result[groups[i]] = fold
    return result
