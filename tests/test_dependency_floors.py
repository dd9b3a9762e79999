"""The dependency floors in pyproject.toml cover the features the code uses.

Cheap and offline (CI runs it): it reads the floors and the source. The floors themselves
are exercised by ``scripts/check_floors.sh``, which installs exactly those versions into a
fresh venv and runs a smoke subset (docs/robustness.md).
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# (package, oldest version that has the feature, the feature, regex over anatile's source
# that shows the feature is used, or None when the floor is simply the oldest tested one)
FEATURES: list[tuple[str, str, str, str | None]] = [
    ("scipy", "1.15", "rng= in differential_evolution and the qmc samplers",
     r"\brng=(opts\.seed|rng)\b"),
    ("scipy", "1.7", "x0= (the baseline in the initial population) of differential_evolution",
     r"\bx0=x0\b"),
    ("numpy", "1.17", "numpy.random.default_rng", r"default_rng\("),
    ("torch", "2.0", "torch.compile of the WPO kernel", r"torch\.compile\("),
    ("torch", "1.11", "nn.Module.get_extra_state / set_extra_state", r"def get_extra_state"),
    ("torch", "2.13", "oldest torch tested by scripts/check_floors.sh (the local CPU wheel)",
     None),
    ("ipywidgets", "8.0", "ipywidgets 8 layout and Output API", r"import ipywidgets"),
    ("matplotlib", "3.7", "oldest matplotlib the floors script runs", None),
    ("numba", "0.60", "the numba kernel of the batched WPO loss (floor set with it; not yet "
     "run by scripts/check_floors.sh)", r"numba"),
    ("ipyevents", "2.0", "ipyevents.Event on the figure images of the widgets",
     r"import ipyevents|from ipyevents"),
]


def _floors() -> dict[str, Version]:
    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    floors = {}
    for dep in data["project"]["dependencies"]:
        req = Requirement(dep)
        lows = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert lows, f"{req.name}: expected a '>=' floor in pyproject.toml, got {dep!r}"
        floors[req.name] = max(lows)
    return floors


def _source() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "anatile").rglob("*.py")))


def test_every_runtime_dependency_has_a_floor_with_a_reason() -> None:
    # _floors() asserts a '>=' floor for each; each must also be in the FEATURES table
    assert set(_floors()) == {package for package, *_ in FEATURES}


@pytest.mark.parametrize(("package", "minimum", "feature", "pattern"), FEATURES,
                         ids=[f"{p}>={m}" for p, m, _, _ in FEATURES])
def test_floor_covers_feature(package: str, minimum: str, feature: str,
                              pattern: str | None) -> None:
    if pattern is not None and not re.search(pattern, _source()):
        pytest.fail(f"{feature!r} is no longer used: update the FEATURES table")
    floor = _floors()[package]
    assert floor >= Version(minimum), (
        f"{package}>={floor} in pyproject.toml, but {feature} needs {package}>={minimum}")


def test_installed_versions_meet_the_floors() -> None:
    for name, floor in _floors().items():
        installed = Version(md.version(name).split("+")[0])
        assert installed >= floor, f"{name} {installed} is below the floor {floor}"


def test_python_floor() -> None:
    tomllib = pytest.importorskip("tomllib")
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    # zip(strict=True) and X | Y unions at run time need Python 3.10
    assert spec == ">=3.10"
    assert re.search(r"zip\([^)]*strict=", _source())
    assert sys.version_info >= (3, 10)


def test_floors_script_reads_pyproject() -> None:
    script = (ROOT / "scripts" / "check_floors.sh").read_text()
    assert "pyproject.toml" in script and "--only-binary=:all:" in script
