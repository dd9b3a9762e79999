"""A default stated in the documentation is the code's default.

The API reference cannot disagree with the code: ``docs/_ext/config_fields.py`` reads every
config field's default from the dataclass. The narrative pages and the README state
defaults in prose ("``out_noise`` (default 0.06)", "``digital_bias=True``, the default",
"``workers`` defaults to 1"); this test finds each such statement and compares it with the
defaults of the code: dataclass fields of :mod:`anatile.config` and the WPO options, and
the keyword defaults of every public class and function of the package. When a default
changes in the code, the sentence that restates it fails here until it is updated.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import inspect
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

from config_fields import format_default  # noqa: E402

PACKAGES = ["anatile.config", "anatile.tiles", "anatile.inference", "anatile.nn", "anatile.wpo",
            "anatile.functional", "anatile.widgets"]
PAGES = sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]

_VALUE = (
    r"(?P<value>-?\d[\d_.]*(?:[eE][-+]?\d+)?(?:\s*/\s*\d+)?"
    r"|True|False|None|\"[^\"]*\"|'[^']*')"
)
_CLAIMS = [
    # `name` (default 0.06) / `name` (default: 0.06) / `name` (the default 0.06)
    re.compile(r"`(?:[\w.]+\.)?(?P<name>\w+)`\s*\((?:the\s+)?default:?\s*`?" + _VALUE),
    # `name` defaults to 1 / `name` is 1 by default
    re.compile(r"`(?:[\w.]+\.)?(?P<name>\w+)`\s+defaults\s+to\s+`?" + _VALUE),
    # `name=True` (the default) / `name=True`, the default / `name = 1` (default)
    re.compile(
        r"`(?:[\w.]+\.)?(?P<name>\w+)\s*=\s*" + _VALUE
        + r"`\s*(?:\(|,)\s*(?:the\s+)?default\b"
    ),
]


def _add(table: dict[str, list[Any]], name: str, value: Any) -> None:
    if value is not inspect.Parameter.empty and value is not dataclasses.MISSING:
        table[name].append(value)


def _instance_defaults(cls: type, params: Any, table: dict[str, list[Any]]) -> None:
    """A ``None`` default that the constructor resolves (``g_max=None`` -> 25 µS) counts with
    the value a default instance holds."""
    try:
        instance = cls()
    except Exception:
        return
    for p in params:
        value = getattr(instance, p.name, None)
        if isinstance(value, (bool, int, float, str, enum.Enum)):
            _add(table, p.name, value)


def code_defaults() -> dict[str, list[Any]]:
    """Every default the package defines, by parameter or field name."""
    table: dict[str, list[Any]] = defaultdict(list)
    seen: set[int] = set()
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
                for f in dataclasses.fields(obj):
                    if f.default is not dataclasses.MISSING:
                        _add(table, f.name, f.default)
                    elif f.default_factory is not dataclasses.MISSING:
                        _add(table, f.name, f.default_factory())
            target = obj.__init__ if inspect.isclass(obj) else obj
            if not callable(target):
                continue
            try:
                params = inspect.signature(target).parameters.values()
            except (TypeError, ValueError):
                continue
            for p in params:
                _add(table, p.name, p.default)
            if inspect.isclass(obj):
                _instance_defaults(obj, params, table)
                for meth_name, meth in vars(obj).items():
                    if meth_name.startswith("_") or not inspect.isfunction(meth):
                        continue
                    for p in inspect.signature(meth).parameters.values():
                        _add(table, p.name, p.default)
    return table


def parse_value(text: str) -> Any:
    text = text.strip().replace("_", "")
    if text in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[text]
    if text[:1] in "\"'":
        return text[1:-1]
    if "/" in text:
        num, den = text.split("/")
        return float(num) / float(den)
    return float(text)


def matches(documented: Any, default: Any) -> bool:
    if isinstance(default, enum.Enum):
        default = default.value
    if isinstance(documented, bool) or documented is None or isinstance(default, bool):
        return documented is default or documented == default
    if isinstance(documented, str):
        return isinstance(default, str) and documented == default
    if isinstance(default, (int, float)):
        return math.isclose(float(documented), float(default), rel_tol=1e-6, abs_tol=1e-12)
    return False


def claims(text: str) -> list[tuple[int, str, str]]:
    """``(line, name, value text)`` of each default stated in ``text``."""
    found = []
    for pattern in _CLAIMS:
        for m in pattern.finditer(text):
            found.append((text.count("\n", 0, m.start()) + 1, m.group("name"), m.group("value")))
    return found


def mismatches(text: str, defaults: dict[str, list[Any]]) -> list[str]:
    out = []
    for line, name, value in claims(text):
        if name not in defaults:
            continue  # not a parameter of ours (a paper's symbol, a widget trait, ...)
        documented = parse_value(value)
        if not any(matches(documented, d) for d in defaults[name]):
            shown = ", ".join(sorted({format_default(d) for d in defaults[name]}))
            out.append(f"line {line}: `{name}` documented as {value}, code default {shown}")
    return out


@pytest.fixture(scope="module")
def defaults() -> dict[str, list[Any]]:
    return code_defaults()


def test_the_checker_catches_a_wrong_default(defaults: dict[str, list[Any]]) -> None:
    out_noise = defaults["out_noise"][0]
    good = f"the output noise `out_noise` (default {out_noise}) is Gaussian"
    bad = f"the output noise `out_noise` (default {out_noise * 2}) is Gaussian"
    assert claims(good) == [(1, "out_noise", str(out_noise))]
    assert mismatches(good, defaults) == []
    assert len(mismatches(bad, defaults)) == 1
    assert len(mismatches("`digital_bias=False`, the default", defaults)) == 1
    assert mismatches("`inp_res` defaults to 1/126", defaults) == [] or \
        not any(matches(1 / 126, d) for d in defaults["inp_res"])


def test_documented_defaults_are_the_code_defaults(defaults: dict[str, list[Any]]) -> None:
    problems = []
    n_claims = 0
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        n_claims += sum(1 for _, name, _ in claims(text) if name in defaults)
        problems += [f"{page.relative_to(ROOT)}: {m}" for m in mismatches(text, defaults)]
    assert not problems, "\n".join(problems)
    assert n_claims >= 3, f"only {n_claims} stated defaults found: is the scanner broken?"
