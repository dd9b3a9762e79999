"""The examples in the API reference run and print what they say.

Every public class and function of the package (each package's ``__all__``) has a ``>>>``
example in its own docstring (checked), and every example (in its docstring and its
methods') runs as a doctest with ``torch`` and the object's package imported.
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

PACKAGES = ["anatile.config", "anatile.tiles", "anatile.nn", "anatile.inference",
            "anatile.wpo", "anatile.functional", "anatile.analysis", "anatile.widgets",
            "anatile.events", "anatile.exceptions"]


def _public_objects() -> list[tuple[str, object, dict[str, object]]]:
    out = []
    seen: set[int] = set()
    for pkg in PACKAGES:
        module = importlib.import_module(pkg)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if id(obj) in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.add(id(obj))
            out.append((f"{pkg}.{name}", obj, vars(module)))
    return out


def _tests() -> list[doctest.DocTest]:
    import torch

    finder = doctest.DocTestFinder(recurse=True, exclude_empty=True)
    tests = []
    for qualname, obj, namespace in _public_objects():
        globs = {**namespace, "torch": torch, "nn": torch.nn}
        tests += [t for t in finder.find(obj, qualname, globs=globs) if t.examples]
    return sorted({t.name: t for t in tests}.values(), key=lambda t: t.name)


TESTS = _tests()


def test_there_are_examples() -> None:
    assert len(TESTS) >= 20, [t.name for t in TESTS]


def test_every_public_object_has_an_example() -> None:
    """Like PyTorch's API pages: each public class and function shows how it is used."""
    missing = [name for name, obj, _ in _public_objects() if ">>>" not in (obj.__doc__ or "")]
    assert not missing, "public objects without a >>> example in their docstring:\n" + \
        "\n".join(missing)


@pytest.mark.parametrize("test", TESTS, ids=lambda t: t.name)
def test_example_runs(test: doctest.DocTest) -> None:
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    failures: list[str] = []
    runner.run(test, out=failures.append)
    assert runner.failures == 0, "".join(failures)
