"""Fine-tuning Xception's top blocks from cached features of its frozen trunk.

Why: on a CPU, a pass through the whole of Xception is what makes training slow, and in the
usual fine-tuning recipe most of the network is frozen anyway. The frozen trunk (blocks 1-13 when
one block trains, 1-12 when two do) gives every crop the same features in every epoch, so they are
computed once and kept on disk: training then runs only the open blocks and the head, ~6-10x
cheaper per crop (measured 140 vs 16-23 crops/s at 160 px on a 2-core CPU), and a cross-validation
reuses one cache for every fold.

What it costs: augmentation can no longer be fresh in every epoch. Each crop is cached in
``cache_variants`` random variants (its own pseudo-fake blend, flip, colour and format round trip
each time), and epoch ``e`` reads variant ``e mod variants``.

The cache lives in ``<dataset>/trunk-cache/<key>/``: ``features.npy`` (float16, items x variants x
H x W x C, written in place so an interrupted run resumes), ``items.json`` and ``done.json``.
``key`` hashes everything that changes the features: the trunk's starting weights and cut, input
size, augmentation, pseudo-fake and seed settings, and the manifest's rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from core.files import write_json_atomic
from core.training.augment import augment_crop, format_roundtrip
from core.training.crops import item_weights, load_rgb, plan_items, prepare_batch
from core.training.networks import TrainError, backbone_of
from core.training.pseudo_fakes import self_blend

# Trainable top blocks -> the first layer of the top: the trunk ends at that layer's input.
TOP_STARTS = {1: "block14_sepconv1", 2: "block13_sepconv1_act"}
CACHE_BATCH = 32
CACHE_FORMAT = 1


def split_xception(net: keras.Model, trainable_blocks: int) -> tuple[keras.Model, keras.Model]:
    """(trunk, top) of the registry's Xception: ``top(trunk(x)) == net(x)``, sharing its layers.

    Training ``top`` trains ``net``'s own layers, so saving ``net`` saves the result.

    Raises:
        TrainError: ``trainable_blocks`` is not 1 or 2, or ``net`` is not the registry's Xception.
    """
    if trainable_blocks not in TOP_STARTS:
        raise TrainError(f"a cached trunk needs 1 or 2 trainable blocks, not {trainable_blocks}")
    backbone = backbone_of(net)
    if backbone is None:
        raise TrainError("a cached trunk needs the registry's Xception (no nested backbone found)")
    cut = backbone.get_layer(TOP_STARTS[trainable_blocks]).input
    trunk = keras.Model(backbone.input, cut, name="xception_trunk")
    upper = keras.Model(cut, backbone.output, name="xception_top_blocks")
    inputs = keras.Input(shape=tuple(cut.shape[1:]), name="trunk_features")
    x = upper(inputs)
    # The head is every layer of the detector after its backbone (dropout, dense).
    after = net.layers[net.layers.index(backbone) + 1 :]
    for layer in after:
        x = layer(x)
    return trunk, keras.Model(inputs, x, name="xception_top")


def _manifest_hash(rows: Sequence[dict]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row['path']}|{row['label']}\n".encode())
    return digest.hexdigest()


def cache_key(spec, rows: Sequence[dict], init_note: str, training: bool) -> str:
    """A short hash of everything that changes the cached features."""
    from core.training.augment import AugmentConfig, RoundtripConfig
    from core.training.pseudo_fakes import SelfBlendConfig

    parts = {
        "format": CACHE_FORMAT,
        "init": init_note,
        "input_size": spec.input_size,
        "top_blocks": spec.trainable_blocks,
        "training": training,
        "variants": spec.cache_variants if training else 1,
        "seed": spec.seed,
        "augment": spec.augment and training,
        "roundtrip": spec.roundtrip and training,
        # A training cache always holds the pseudo-fakes: a run without them (or with only
        # them) reads the same cache and leaves items out, so an ablation costs no new cache.
        "pseudo_fakes": "add" if training else "off",
        "configs": [repr(SelfBlendConfig()), repr(AugmentConfig()), repr(RoundtripConfig())],
        "rows": _manifest_hash(rows),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _variant_image(row: dict, pseudo: bool, variant: int, index: int, spec, training: bool) -> np.ndarray:
    image = load_rgb(row["file"])
    if not training:
        return image
    # One generator per (item, variant): the same cache whatever order items are computed in.
    rng = np.random.default_rng([spec.seed, index, int(pseudo), variant])
    if pseudo:
        image, _ = self_blend(image, rng)
    if spec.augment:
        image = augment_crop(image, rng)
    if spec.roundtrip:
        image = format_roundtrip(image, rng)
    return image


def build_cache(
    rows: Sequence[dict], spec, trunk: keras.Model, folder: Path, training: bool, log=print
) -> tuple[np.ndarray, list[tuple[int, bool]]]:
    """Trunk features of every item of ``rows`` (pseudo-fakes included when training).

    Returns:
        ``(features, items)``: a read-only float16 memmap (items, variants, H, W, C) and the
        ``(row index, is_pseudo_fake)`` of each item, in ``rows`` order. A training cache
        holds a pseudo-fake for every real row whatever the run's mode (see :func:`_kept`).
    """
    import time

    items = plan_items(rows, "add" if training else "off")
    variants = spec.cache_variants if training else 1
    shape = (len(items), variants, *[int(d) for d in trunk.output.shape[1:]])
    folder.mkdir(parents=True, exist_ok=True)
    path, done_path = folder / "features.npy", folder / "done.json"
    progress = json.loads(done_path.read_text()) if done_path.is_file() else {"done": 0}
    if progress.get("complete"):
        return np.load(path, mmap_mode="r"), items
    mode = "r+" if path.is_file() and progress["done"] else "w+"
    store = np.lib.format.open_memmap(path, mode=mode, dtype=np.float16, shape=shape)
    (folder / "items.json").write_text(
        json.dumps([[rows[i]["path"], pseudo] for i, pseudo in items]) + "\n", encoding="utf-8"
    )
    start, total = int(progress["done"]), len(items) * variants
    t0 = time.time()
    for flat in range(start, total, CACHE_BATCH):
        chunk = range(flat, min(total, flat + CACHE_BATCH))
        images = [
            _variant_image(
                rows[items[k // variants][0]],
                items[k // variants][1],
                k % variants,
                items[k // variants][0],
                spec,
                training,
            )
            for k in chunk
        ]
        batch = prepare_batch(images, spec.input_size, "xception")
        feats = np.asarray(trunk.predict_on_batch(batch), dtype=np.float16)
        for j, k in enumerate(chunk):
            store[k // variants, k % variants] = feats[j]
        done = chunk.stop
        if done == total or (done // CACHE_BATCH) % 20 == 0:
            store.flush()
            write_json_atomic(done_path, {"done": done, "complete": done == total})
            rate = (done - start) / max(time.time() - t0, 1e-6)
            log(f"trunk cache: {done}/{total} crops ({rate:.1f} crops/s)")
    del store
    return np.load(path, mmap_mode="r"), items


class FeatureDataset(keras.utils.PyDataset):
    """Batches ``(features, y, sample_weight)`` from a trunk cache, for some of its items.

    Args:
        features: the cache (items, variants, ...).
        items: ``(row index, is_pseudo)`` of each cached item.
        rows: the manifest rows the items index.
        keep: indices into ``items`` to use (a fold's training rows and their pseudo-fakes).
        batch_size: items per batch.
        training: shuffle every epoch and read variant ``epoch mod variants``.
        balance: as :func:`core.training.crops.item_weights`.
        seed: shuffling seed.
    """

    def __init__(
        self,
        features: np.ndarray,
        items: Sequence[tuple[int, bool]],
        rows: Sequence[dict],
        keep: Sequence[int],
        batch_size: int,
        training: bool,
        balance: str = "weights",
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not len(keep):
            raise ValueError("no cached crops to read")
        self.features, self.keep = features, np.asarray(keep, dtype=np.int64)
        kept_items = [items[i] for i in self.keep]
        self.labels = np.array([1 if p else int(rows[r]["label"]) for r, p in kept_items], np.float32)
        self.weights = item_weights(rows, kept_items, balance if training else "none").astype(np.float32)
        counts = np.bincount(self.labels.astype(np.int64), minlength=2)
        self.class_counts = (int(counts[0]), int(counts[1]))
        self.batch_size, self.training, self.seed = batch_size, training, seed
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        n = len(self.keep)
        if not self.training:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __len__(self) -> int:
        return -(-len(self.keep) // self.batch_size)

    def __getitem__(self, idx: int):
        picked = self.order[idx * self.batch_size : (idx + 1) * self.batch_size]
        # Sorted reads are sequential on disk; the order inside a batch does not matter.
        picked = picked[np.argsort(self.keep[picked])]
        variant = self.epoch % self.features.shape[1] if self.training else 0
        x = np.asarray(self.features[self.keep[picked], variant], dtype=np.float32)
        return x, self.labels[picked].reshape(-1, 1), self.weights[picked]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def _kept(pseudo: bool, label: int, mode: str) -> bool:
    """Whether a cached item belongs to a run with this pseudo-fake mode (see plan_items)."""
    if pseudo:
        return mode != "off"
    return mode != "only" or int(label) == 0


def cached_datasets(
    spec, net: keras.Model, train_rows: list[dict], val_rows: list[dict], init_note: str, log
) -> tuple[keras.Model, FeatureDataset, FeatureDataset | None]:
    """The trainable top of ``net`` and its training/validation datasets over cached features.

    The training cache covers every row of the dataset (not only this run's), so that every fold
    of a cross-validation reuses it.
    """
    from core.data.datasets import read_manifest

    trunk, top = split_xception(net, spec.trainable_blocks)
    data = Path(spec.data).expanduser()
    all_rows = read_manifest(data)
    key = cache_key(spec, all_rows, init_note, training=True)
    features, items = build_cache(all_rows, spec, trunk, data / "trunk-cache" / key, True, log)
    wanted = {r["path"] for r in train_rows}
    keep = [
        k
        for k, (r, pseudo) in enumerate(items)
        if all_rows[r]["path"] in wanted and _kept(pseudo, all_rows[r]["label"], spec.pseudo_fakes)
    ]
    train_ds = FeatureDataset(features, items, all_rows, keep, spec.batch, True, spec.balance, spec.seed)
    val_ds = None
    if val_rows:
        vkey = cache_key(spec, val_rows, init_note, training=False)
        vfeat, vitems = build_cache(val_rows, spec, trunk, data / "trunk-cache" / vkey, False, log)
        val_ds = FeatureDataset(vfeat, vitems, val_rows, range(len(vitems)), spec.batch, False)
    return top, train_ds, val_ds
