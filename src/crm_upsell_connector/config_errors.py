"""Every problem of a config at once, each with its key path; an unknown key with the nearest valid one.

pydantic reports all the problems of a document in one ``ValidationError``; this module turns each
into ``file: dotted.path: what is wrong`` and, for a key that is not known, looks up the keys that
are valid at that place (walking the models along the path) and suggests the closest by spelling.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def key_text(part: str) -> str:
    """A key as a message shows it: as written, or quoted when blank or not printable (a newline)."""
    return part if part.isprintable() and part.strip() else repr(part)


def location_text(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{key_text(part)}" if text else key_text(part)
    return text


def _unwrap(annotation: Any) -> list[Any]:
    """The model/container types an annotation may hold (``X | None`` gives X)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [annotation]


def _step(annotation: Any, part: int | str) -> Any:
    """The annotation one step further along a path, or None where the path leaves the models."""
    for candidate in _unwrap(annotation):
        origin = typing.get_origin(candidate)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if isinstance(part, str) and part in candidate.model_fields:
                return candidate.model_fields[part].annotation
        elif origin in (list, tuple) and isinstance(part, int):
            args = typing.get_args(candidate)
            return args[0] if args else None
        elif origin is dict and isinstance(part, str):
            args = typing.get_args(candidate)
            return args[1] if len(args) == 2 else None
    return None


def valid_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys that are valid in the table at ``loc`` (the path of the unknown key's parent)."""
    annotation: Any = model
    for part in loc:
        annotation = _step(annotation, part)
        if annotation is None:
            return []
    for candidate in _unwrap(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return list(candidate.model_fields)
    return []


def nearest_key(unknown: str, valid: list[str]) -> str | None:
    close = difflib.get_close_matches(unknown, valid, n=1, cutoff=0.6)
    return close[0] if close else None


def describe_errors(
    source: str,
    exc: ValidationError,
    model: type[BaseModel],
    prefix: tuple[int | str, ...] = (),
    *,
    top_keys: list[str] | None = None,
) -> list[str]:
    """One ``file: path: message`` line per problem, in the order pydantic found them."""
    lines: list[str] = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        where = location_text((*prefix, *loc))
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
            if loc and isinstance(loc[-1], str):
                parent = loc[:-1]
                keys = top_keys if (top_keys is not None and not parent) else valid_keys(model, parent)
                near = nearest_key(loc[-1], keys)
                if near is not None:
                    message += f" (did you mean {near!r}?)"
                elif keys:
                    message += f" (valid here: {', '.join(keys)})"
        elif error["type"] == "missing":
            message = "required key is missing"
        lines.append(f"{source}: {where}: {message}" if where else f"{source}: {message}")
    return lines
