"""Declarative validation of the project's JSON files against the schemas in ``core/schemas/``.

A schema states the shape of a model card, a training spec or a report once, readable by anyone
(and by other tools); this module loads it (once per process) and turns the most relevant failure
into the one plain line the project shows everywhere. Each schema node may carry an
``x-message``: the words a person reads when that node is what failed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

SCHEMAS_DIR = Path(__file__).resolve().parent / "schemas"


@functools.cache
def _validator(name: str):
    import jsonschema

    schema = json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def first_problem(name: str, data: object) -> str | None:
    """The most relevant way ``data`` breaks schema ``name`` as one plain line; None when it fits.

    Args:
        name: the schema's file stem in ``core/schemas/`` (``model_card``, ``train_spec``, ...).
        data: the parsed JSON.
    """
    from jsonschema.exceptions import best_match

    error = best_match(_validator(name).iter_errors(data))
    if error is None:
        return None
    if error.validator == "required":
        missing = [
            key for key in error.validator_value if isinstance(error.instance, dict) and key not in error.instance
        ]
        if error.schema.get("x-missing") == "property":
            # This object's fields explain themselves better than "missing": say what the field must be.
            return _words(error.schema["properties"][missing[0]], None)
        where = ".".join(str(p) for p in error.absolute_path)
        return f"missing field(s) {', '.join(missing)}" + (f" in {where}" if where else "")
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))
        return f"unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}"
    message = _words(error.schema, error.instance) if isinstance(error.schema, dict) else None
    if message is None:
        where = ".".join(str(p) for p in error.absolute_path) or "the file"
        message = f"{where}: {error.message}"
    return message


def _words(node: dict, value: object) -> str | None:
    """A node's ``x-message``, with ``{value!r}`` standing for the value found (None when absent)."""
    message = node.get("x-message")
    return message.format(value=value) if message else None
