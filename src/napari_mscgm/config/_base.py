"""The base of every configuration: strict, frozen and finite."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict", "first_error"]


class Strict(BaseModel):
    """Unknown keys are errors, instances are immutable, and NaN / Infinity are refused.

    NaN and Infinity are valid to Python's json module, never to a configuration.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def first_error(exc: Exception, *, location: bool = True, skip: int = 0) -> str:
    """``field.path: problem`` of a pydantic ``ValidationError``'s first error (and how many more).

    A validator's own ``ValueError`` text is kept as written (without pydantic's
    "Value error, " prefix); ``location=False`` leaves out the field path of those,
    for messages that name their field themselves. ``skip`` drops leading path parts
    (a discriminated union's tag).
    """
    import json

    errors = exc.errors() if hasattr(exc, "errors") else None
    if not errors:
        text = str(exc).strip()
        return text.splitlines()[0] if text else type(exc).__name__
    first = errors[0]
    # Keys may come from a file: escape control characters, keep them short.
    where = ".".join(
        str(part) if isinstance(part, int) else json.dumps(str(part), ensure_ascii=False)[1:-1][:40]
        for part in tuple(first.get("loc", ()))[skip:]
    )
    text = first.get("msg", "invalid")
    if first.get("type") == "value_error":
        text = text.removeprefix("Value error, ")
        if not location:
            where = ""
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {text}{more}" if where else f"{text}{more}"
