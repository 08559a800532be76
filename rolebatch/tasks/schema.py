"""The response model: the seed's ``Response``, a pydantic class, or a JSON Schema file."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, create_model

from ..errors import UsageError


class Response(BaseModel):
    """The default answer: one poem."""

    poem: str


def load_schema(spec: str | None) -> type[BaseModel]:
    """``None`` → Response; ``module:Class`` → that class; ``*.json`` → a model built from it."""
    if not spec:
        return Response
    if spec.endswith(".json") or Path(spec).is_file():
        return _from_json_file(Path(spec))
    if ":" in spec:
        return _from_import(spec)
    raise UsageError(
        f"--schema {spec!r}: expected module:Class (e.g. mypkg.models:Answer)"
        " or a path to a JSON Schema file ending in .json"
    )


def _from_import(spec: str) -> type[BaseModel]:
    module_name, _, attr = spec.partition(":")
    # A module next to the job is the common case; make the working directory importable.
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--schema {spec!r}: cannot import {module_name!r}: {exc}") from None
    model = getattr(module, attr, None)
    if model is None:
        raise UsageError(f"--schema {spec!r}: module {module_name!r} has no {attr!r}")
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise UsageError(f"--schema {spec!r}: {attr!r} is not a pydantic BaseModel subclass")
    return model


def _from_json_file(path: Path) -> type[BaseModel]:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"--schema {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"--schema {path}: not a readable JSON file: {exc}") from None
    if not isinstance(schema, dict):
        raise UsageError(f"--schema {path}: a JSON Schema must be an object")
    try:
        return model_from_schema(schema, defs=schema.get("$defs") or schema.get("definitions"))
    except _SchemaProblem as problem:
        raise UsageError(f"--schema {path}: {problem}") from None


class _SchemaProblem(Exception):
    pass


def _class_name(title: str | None, fallback: str) -> str:
    name = re.sub(r"\W+", "_", title or fallback).strip("_") or fallback
    return name[0].upper() + name[1:] if not name[0].isdigit() else f"M{name}"


def model_from_schema(
    schema: dict[str, Any], defs: dict[str, Any] | None = None, name: str | None = None
) -> type[BaseModel]:
    """Build a pydantic model from an object JSON Schema (the subset LLM tools use)."""
    if schema.get("type", "object") != "object":
        raise _SchemaProblem('the top level must be an object schema ("type": "object")')
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise _SchemaProblem('the object schema needs at least one property in "properties"')
    required = set(schema.get("required", []))
    fields: dict[str, Any] = {}
    for prop, sub in properties.items():
        annotation = _annotation(sub, defs or {}, f"{name or 'Response'}_{prop}")
        info = _field_info(sub)
        if prop in required:
            fields[prop] = (annotation, Field(**info))
        else:
            fields[prop] = (Optional[annotation], Field(default=None, **info))  # noqa: UP045
    extra = "forbid" if schema.get("additionalProperties") is False else "ignore"
    return create_model(
        _class_name(name or schema.get("title"), "Response"),
        __config__=ConfigDict(extra=extra),
        __doc__=schema.get("description"),
        **fields,
    )


_SIMPLE = {"string": str, "integer": int, "number": float, "boolean": bool}


def _annotation(sub: dict[str, Any], defs: dict[str, Any], name: str) -> Any:
    if not isinstance(sub, dict):
        raise _SchemaProblem(f"property schema for {name!r} must be an object")
    if "$ref" in sub:
        ref = sub["$ref"].rsplit("/", 1)[-1]
        if ref not in defs:
            raise _SchemaProblem(f"unresolved $ref {sub['$ref']!r}")
        return _annotation(defs[ref], defs, ref)
    if "enum" in sub:
        return Literal[tuple(sub["enum"])]
    for key in ("anyOf", "oneOf"):
        if key in sub:
            options = [_annotation(option, defs, name) for option in sub[key]]
            union = options[0]
            for option in options[1:]:
                union = union | option
            return union
    kind = sub.get("type")
    if isinstance(kind, list):
        options = [_annotation({**sub, "type": k}, defs, name) for k in kind]
        union = options[0]
        for option in options[1:]:
            union = union | option
        return union
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind == "null":
        return type(None)
    if kind == "array":
        return list[_annotation(sub.get("items", {}), defs, name)] if sub.get("items") else list
    if kind == "object" or (kind is None and "properties" in sub):
        if sub.get("properties"):
            return model_from_schema(sub, defs, sub.get("title") or name)
        return dict
    if kind is None:
        return Any
    raise _SchemaProblem(f"unsupported type {kind!r} in {name!r}")


_CONSTRAINTS = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "minItems": "min_length",
    "maxItems": "max_length",
}


def _field_info(sub: dict[str, Any]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    if isinstance(sub, dict):
        if "description" in sub:
            info["description"] = sub["description"]
        for key, arg in _CONSTRAINTS.items():
            if key in sub and "$ref" not in sub:
                info[arg] = sub[key]
    return info
