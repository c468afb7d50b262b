"""The child process that opens an uploaded weights file: ``python -m models.weight_check FILE ARCH LIMIT``.

An uploaded file is untrusted input to libhdf5 (C code: a crafted file can crash it, or make it
allocate without end) and to Keras' loader, so :func:`models.user_weights.check_weights` runs the
parsing here, in a process of its own, never in the web server. Before anything parses the file
this process caps its own address space (``RLIMIT_AS`` at LIMIT bytes), so a file that makes the
parser allocate without end fails here instead of taking the server's memory; the parent adds a
wall-clock timeout and turns a crash into a plain message.

Prints one JSON line on stdout: ``{"format": "legacy" | "keras3"}`` when the weights load into a
freshly built ARCH and give a probability, else ``{"error": "<why, in plain words>"}``.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import warnings

RESULT_PREFIX = "dfi-weight-check:"  # marks the result line among whatever else lands on stdout


def limit_address_space(limit_bytes: int) -> None:
    """Cap this process's virtual memory (soft and hard: the file cannot raise it again)."""
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def sniff_format(path: str) -> str:
    """``legacy`` or ``keras3`` from the HDF5 layout; raises ValueError (plain words) otherwise."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs or ("model_weights" in f and "layer_names" in f["model_weights"].attrs):
                return "legacy"
            if "vars" in f or "layers" in f:
                return "keras3"
    except (OSError, ValueError):
        raise ValueError("this file is not a Keras weights file (it is not HDF5 data)") from None
    raise ValueError("this HDF5 file holds no Keras weights (no layer names, no saved layers)")


def check_file(path: str, architecture: str) -> dict:
    """The result line's object for ``path`` checked against ``architecture``."""
    import numpy as np

    from models.architectures import ARCHITECTURES

    arch = ARCHITECTURES[architecture]
    try:
        kind = sniff_format(path)
    except ValueError as exc:
        return {"error": str(exc)}
    # Keras picks its loader by the suffix: the parent named the file after nothing, so link it.
    named = f"{path}.weights.h5" if kind == "keras3" else f"{path}.h5"
    os.link(path, named)
    model = arch.build()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns per skipped layer before it raises
            model.load_weights(named)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {
            "error": f"these weights do not fit the {arch.display_name} architecture ({reason}); "
            "pick the architecture the file was trained for"
        }
    finally:
        os.unlink(named)
    # One forward pass on a mid-grey image: weights full of NaN load fine but can never give a score.
    size = arch.input_size
    out = np.asarray(model.predict_on_batch(np.full((1, size, size, 3), 0.5, np.float32)), np.float64)
    if out.size != 1 or not np.isfinite(out).all() or not 0.0 <= float(out.ravel()[0]) <= 1.0:
        return {"error": "these weights load, but the model gives no usable score with them (not a probability)"}
    return {"format": kind}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m models.weight_check FILE ARCHITECTURE LIMIT_BYTES", file=sys.stderr)
        return 2
    path, architecture, limit = argv
    limit_address_space(int(limit))
    try:
        result = check_file(path, architecture)
    except MemoryError:
        result = {"error": "checking it needs more memory than a check may use (is it really weights?)"}
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
