"""Config reference tables generated from the dataclasses (Sphinx extension).

Every config class documents its fields in an ``Attributes:`` section of its docstring.
When autodoc renders such a class, this extension replaces that section by a table with
one attribute entry per dataclass field: name, type, **default taken from the dataclass
itself**, and the meaning from the docstring (linkable as ``IOParameters.out_noise``).
A default therefore cannot be stated wrongly in the API
reference, and it follows the code when a default changes.

The same helpers are used by ``tests/docs/test_documented_defaults.py``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
import re
from typing import Any

_SECTION = re.compile(r"^(\s*)Attributes:\s*$")
_ENTRY = re.compile(r"^(\w+(?:\s*,\s*\w+)*)\s*(?:\(([^)]*)\))?:\s*(.*)$")


def attribute_sections(lines: list[str]) -> list[tuple[dict[str, str], int, int]]:
    """Every ``Attributes:`` section of a Google docstring, as :func:`attribute_docs`."""
    out = []
    at = 0
    while (parsed := attribute_docs(lines, at)) is not None:
        out.append(parsed)
        at = parsed[2]
    return out


def attribute_docs(lines: list[str], at: int = 0) -> tuple[dict[str, str], int, int] | None:
    """Parse the first ``Attributes:`` section of a Google docstring at or after ``at``.

    Returns ``({name: meaning}, first_line, end_line)`` (the section spans
    ``lines[first_line:end_line]``), or None when there is no such section. An entry
    ``a, b: text`` documents both ``a`` and ``b``.
    """
    start = next((i for i in range(at, len(lines)) if _SECTION.match(lines[i])), None)
    if start is None:
        return None
    base = len(lines[start]) - len(lines[start].lstrip())
    entries: dict[str, str] = {}
    current: str | None = None
    group: list[str] = []
    entry_indent: int | None = None
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip():
            indent = len(line) - len(line.lstrip())
            if indent <= base:
                break
            if entry_indent is None:
                entry_indent = indent
            match = _ENTRY.match(line.strip()) if indent == entry_indent else None
            if match:
                names = [n.strip() for n in match.group(1).split(",")]
                current = names[-1]
                for n in names:
                    entries[n] = match.group(3).strip()
                group = names
            elif current is not None:
                for n in group:
                    entries[n] += " " + line.strip()
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return entries, start, end


def format_default(value: Any) -> str:
    """A default as a reader writes it: ``1/126`` rather than ``0.007936507936507936``."""
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if value != 0 and math.isfinite(value) and abs(value) < 1:
            inverse = 1.0 / value
            if abs(inverse - round(inverse)) < 1e-9 and abs(round(inverse)) > 1:
                return f"1/{round(inverse)}"
        return repr(value)
    if dataclasses.is_dataclass(value):
        changed = [
            f"{f.name}={format_default(getattr(value, f.name))}"
            for f in dataclasses.fields(value)
            if f.init and _field_default(f) is not dataclasses.MISSING
            and getattr(value, f.name) != _field_default(f)
        ]
        return f"{type(value).__name__}({', '.join(changed)})"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(format_default(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if hasattr(value, "_init_fields") or type(value).__module__.startswith("anatile"):
        return f"{type(value).__name__}()"
    return repr(value)


def _field_default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def field_rows(
    cls: type, meanings: dict[str, str], only: set[str] | None = None
) -> list[tuple[str, str, str, str]]:
    """``(name, type, default, meaning)`` per init field of dataclass ``cls`` (in ``only``)."""
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_") or (only is not None and f.name not in only):
            continue
        default = _field_default(f)
        shown = "required" if default is dataclasses.MISSING else format_default(default)
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        rows.append((f.name, str(type_name), shown, meanings.get(f.name, "")))
    return rows


def _entries(rows: list[tuple[str, str, str, str]], indent: str) -> list[str]:
    """One ``py:attribute`` per field: linkable, with its type and default in the header."""
    out: list[str] = []
    for name, type_name, default, meaning in rows:
        out += [f"{indent}.. py:attribute:: {name}", f"{indent}   :type: {type_name}"]
        if default != "required":
            out.append(f"{indent}   :value: {default}")
        out += ["", f"{indent}   {meaning}" if meaning else f"{indent}   (undocumented)", ""]
    return out


def _drop_documented_properties(obj: type, lines: list[str]) -> None:
    """A property with its own docstring is documented as a member; its ``Attributes:``
    entry would describe the same object a second time."""
    for meanings, start, end in reversed(attribute_sections(lines)):
        props = {
            n for n in meanings
            if isinstance(inspect.getattr_static(obj, n, None), property)
            and inspect.getattr_static(obj, n).__doc__
        }
        if not props:
            continue
        kept: list[str] = []
        skipping = False
        entry_indent = None
        for line in lines[start + 1:end]:
            indent = len(line) - len(line.lstrip())
            if line.strip() and (entry_indent is None or indent <= entry_indent):
                entry_indent = indent if entry_indent is None else entry_indent
                match = _ENTRY.match(line.strip())
                skipping = bool(match) and match.group(1).strip() in props
            if not skipping:
                kept.append(line)
        if any(line.strip() for line in kept):
            lines[start + 1:end] = kept
        else:
            del lines[start:end]


def _process(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what == "data" and not isinstance(obj, type) and type(obj).__module__.startswith("anatile") \
            and inspect.getdoc(type(obj)) == "\n".join(lines).strip():
        # an instance constant: its docstring is its class's, documented there
        lines[:] = [f"A :class:`{type(obj).__qualname__}`: ``{obj!r}``."]
        return
    if what == "class" and inspect.isclass(obj) and not dataclasses.is_dataclass(obj):
        _drop_documented_properties(obj, lines)
        return
    if what != "class" or not dataclasses.is_dataclass(obj):
        return
    sections = attribute_sections(lines)
    if not sections:
        return
    documented = set().union(*(set(meanings) for meanings, _, _ in sections))
    undocumented = {f.name for f in dataclasses.fields(obj) if f.init} - documented
    inherited: dict[str, str] = {}
    for base in obj.__mro__[1:]:  # fields documented on a base class keep their meaning
        for meanings, _, _ in attribute_sections(inspect.getdoc(base).splitlines()
                                                 if base.__doc__ else []):
            for key, text in meanings.items():
                inherited.setdefault(key, text)
    for k, (meanings, start, end) in reversed(list(enumerate(sections))):
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        names = set(meanings) | (undocumented if k == len(sections) - 1 else set())
        meanings = {**{n: inherited.get(n, "") for n in undocumented}, **meanings}
        lines[start:end] = _entries(field_rows(obj, meanings, names), indent)


def setup(app: Any) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    # before napoleon (priority 500), which would turn the section into :ivar: fields
    app.connect("autodoc-process-docstring", _process, priority=400)
    return {"parallel_read_safe": True}
