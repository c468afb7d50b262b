"""The fitting itself: datasets, model, phases, best checkpoint; then the card via core.training.trained_card."""

from __future__ import annotations

import keras
import numpy as np

from core.training.crops import CropDataset, load_rgb, prepare_batch
from core.training.networks import (
    build_architecture,
    count_params,
    distribution_scope,
    initialise,
    set_xception_phase,
)
from core.training.rows import load_rows
from core.training.run_folder import read_metrics
from core.training.runtime import RunCallback, RunFiles, hardware_note
from core.training.spec import TrainSpec
from core.training.trained_card import TrainResult, publish


def _optimizer(spec: TrainSpec, lr: float, family: str) -> keras.optimizers.Optimizer:
    if family == "mesonet":
        # The MesoNet paper: lr divided by 10 every 1000 iterations, down to 1e-6 (from 1e-3).
        lr = keras.optimizers.schedules.PiecewiseConstantDecay([1000, 2000, 3000], [lr, lr / 10, lr / 100, lr / 1000])
    return keras.optimizers.Adam(learning_rate=lr)


def _loss(spec: TrainSpec) -> keras.losses.Loss:
    return keras.losses.MeanSquaredError() if spec.loss == "mse" else keras.losses.BinaryCrossentropy()


def _jit_compile(n_gpus: int) -> bool | str:
    """XLA on GPUs (Keras' "auto"), but not for TensorFlow on CPU, where Keras would also pick it:
    XLA-compiled Xception ran 6-8x slower than plain graph mode on this project's CPU."""
    return "auto" if n_gpus or keras.backend.backend() != "tensorflow" else False


def _monitor(val_rows: list[dict]) -> tuple[str, str]:
    """Validation AUC when the validation set has both classes; else its loss; else training loss."""
    labels = {r["label"] for r in val_rows}
    if labels == {0, 1}:
        return "val_auc", "max"
    return ("val_loss", "min") if val_rows else ("loss", "min")


def _phases(spec: TrainSpec, family: str) -> list[tuple[int, int, int, float]]:
    """(phase, first epoch, end epoch, learning rate) for each phase with epochs to run."""
    if family == "xception" and spec.head_epochs:
        phases = [(1, 0, spec.head_epochs, spec.lr), (2, spec.head_epochs, spec.epochs, spec.finetune_lr)]
    else:
        phases = [(1, 0, spec.epochs, spec.lr)]  # one phase, everything trainable
    return [p for p in phases if p[2] > p[1]]


def fit_run(spec: TrainSpec, files: RunFiles, settings, verbose: int) -> TrainResult:
    """Fit the model of ``spec``, write checkpoints and status, publish the card on success."""
    from models.architectures import ARCHITECTURES, FAMILY_PREPROCESS

    arch = ARCHITECTURES[spec.arch]
    preprocess = FAMILY_PREPROCESS[arch.family]
    train_rows, val_rows = load_rows(spec)
    keras.utils.set_random_seed(spec.seed)
    scope, n_gpus = distribution_scope()
    with scope:
        net = build_architecture(spec.arch, spec.input_size)
        init_note = initialise(net, spec.arch, spec.init, settings)
        # Fit a wrapper, never ``net`` itself: Keras' save_weights stores a compiled model's
        # optimizer state too (Adam doubles or triples the file), and the registry needs only net's.
        inputs = keras.Input(shape=(spec.input_size, spec.input_size, 3))
        output = net(inputs)
        if n_gpus:  # mixed precision: compute in float16, but give the loss a float32 output
            output = keras.layers.Activation("linear", dtype="float32", name="to_float32")(output)
        model = keras.Model(inputs, output, name="trainer")

    if spec.cache_trunk:
        from core.training.trunk_cache import cached_datasets

        # Train the open blocks and the head on cached trunk features (same layers as net).
        model, train_ds, val_ds = cached_datasets(spec, net, train_rows, val_rows, init_note, files.log)
    else:
        common = dict(
            input_size=spec.input_size,
            preprocess=preprocess,
            batch_size=spec.batch,
            seed=spec.seed,
            workers=spec.workers,
            use_multiprocessing=False,
        )
        train_ds = CropDataset(
            train_rows,
            training=True,
            augment=spec.augment,
            pseudo_fakes=spec.pseudo_fakes,
            balance=spec.balance,
            steps=spec.steps_per_epoch,
            roundtrip=spec.roundtrip,
            **common,
        )
        val_ds = CropDataset(val_rows, balance="none", **common) if val_rows else None
    monitor, mode = _monitor(val_rows)
    files.log(f"{spec.arch}.{spec.tag}: {init_note}; {hardware_note(n_gpus)}")
    files.log(
        f"train: {len(train_rows)} crops (real, fake per epoch incl. pseudo-fakes: "
        f"{train_ds.class_counts}), {len(train_ds)} steps of {spec.batch}; "
        f"validation: {len(val_rows)} crops; best checkpoint by {monitor}"
    )

    callback = None
    for phase, first, end, lr in _phases(spec, arch.family):
        # A cached trunk is frozen whatever it started from, so its phases apply to random too.
        if arch.family == "xception" and (spec.init != "random" or spec.cache_trunk):
            set_xception_phase(net, phase, spec.trainable_blocks)
        with scope:
            model.compile(
                optimizer=_optimizer(spec, lr, arch.family),
                loss=_loss(spec),
                metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
                jit_compile=_jit_compile(n_gpus),
            )
        trainable, total = count_params(model)
        files.log(f"phase {phase}: epochs {first + 1}-{end}, lr {lr:g}, {trainable:,} of {total:,} weights train")
        callback = RunCallback(
            files,
            net,
            monitor,
            mode,
            spec.epochs,
            len(train_ds),
            spec.batch,
            phase=phase,
            best=callback.best if callback else None,
            undefined=() if monitor == "val_auc" or not val_rows else ("val_auc",),
        )
        model.fit(
            train_ds, validation_data=val_ds, epochs=end, initial_epoch=first, callbacks=[callback], verbose=verbose
        )
        if callback.cancelled:
            files.set_status(state="cancelled", message="cancelled on request")
            files.log("cancelled")
            return TrainResult("cancelled", files.dir, monitor=monitor, best_value=callback.best)

    if not files.best.is_file():
        raise RuntimeError(f"no epoch produced a finite {monitor}; nothing to save (diverged?)")
    net.load_weights(str(files.best))
    probe = [load_rgb(r["file"]) for r in (val_rows or train_rows)[:8]]
    batch = prepare_batch(probe, spec.input_size, preprocess)
    expected = np.asarray(keras.ops.convert_to_numpy(net(batch, training=False)), np.float64).ravel()
    card_path, weights_path = publish(
        spec, files, settings, monitor, train_rows, val_rows, init_note, hardware_note(n_gpus), probe, expected
    )
    card_id = f"{spec.arch}.{spec.tag}"
    files.set_status(
        state="succeeded",
        card_id=card_id,
        card=str(card_path),
        weights=str(weights_path),
        eta_s=0,
        message=f"card {card_id} written to {card_path}",
    )
    files.log(f"succeeded: card {card_path}, weights {weights_path}")
    best_epoch = next((r["epoch"] for r in reversed(_metrics(files)) if r.get("best")), None)
    return TrainResult(
        "succeeded",
        files.dir,
        card_id,
        card_path,
        weights_path,
        best_epoch,
        monitor,
        callback.best if callback else None,
    )


def _metrics(files: RunFiles) -> list[dict]:
    return read_metrics(files.dir)
