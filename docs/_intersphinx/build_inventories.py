"""Build the intersphinx inventories shipped in ``docs/_intersphinx/`` (the network is closed).

Sphinx links ``torch.Tensor``, ``numpy.ndarray``, ``collections.abc.Sequence`` … to their
projects' documentation through an *inventory* (``objects.inv``): a list of names, their
kinds and the page each is documented on. The documentation machines cannot download the
projects' own inventories, so this script writes equivalent ones from the *installed*
packages: it enumerates the public names of the modules listed below and places each on
the page where that project's documentation generator puts it (for example
``generated/torch.nn.Linear.html#torch.nn.Linear`` for PyTorch,
``reference/generated/numpy.<name>.html`` for NumPy).

Refresh (after upgrading torch / numpy / scipy / matplotlib / ipywidgets)::

    .venv/bin/python docs/_intersphinx/build_inventories.py

On a machine with internet access the projects' own inventories can be used instead; they
are drop-in replacements (same file names)::

    curl -o docs/_intersphinx/python.inv https://docs.python.org/3/objects.inv
    curl -o docs/_intersphinx/torch.inv https://pytorch.org/docs/stable/objects.inv
    curl -o docs/_intersphinx/numpy.inv https://numpy.org/doc/stable/objects.inv
    curl -o docs/_intersphinx/scipy.inv https://docs.scipy.org/doc/scipy/objects.inv
    curl -o docs/_intersphinx/matplotlib.inv https://matplotlib.org/stable/objects.inv
    curl -o docs/_intersphinx/ipywidgets.inv https://ipywidgets.readthedocs.io/en/stable/objects.inv
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import zlib
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent

Entry = tuple[str, str, str]  # (name, "py:class" | ..., uri relative to the project's base URL)


def _public(module_name: str) -> Iterator[tuple[str, object]]:
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
    for name in sorted(set(names)):
        if name.startswith("_"):
            continue
        obj = getattr(module, name, None)
        if obj is not None:
            yield name, obj


def _role(obj: object) -> str | None:
    if inspect.isclass(obj):
        return "py:exception" if issubclass(obj, BaseException) else "py:class"
    if callable(obj):
        return "py:function"
    if inspect.ismodule(obj):
        return None
    return None


# ----------------------------------------------------------------------------- Python
PYTHON_MODULES = [
    "abc", "collections", "collections.abc", "concurrent.futures", "contextlib", "copy",
    "ctypes", "dataclasses", "enum", "functools", "io", "itertools", "json", "logging", "math",
    "os", "pathlib", "pickle", "random", "re", "threading", "time", "typing", "warnings",
    "weakref",
]


def python_entries() -> Iterator[Entry]:
    for name in dir(builtins):
        obj = getattr(builtins, name)
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            yield name, "py:exception", f"library/exceptions.html#{name}"
        elif inspect.isclass(obj) or callable(obj):
            yield name, "py:class" if inspect.isclass(obj) else "py:function", (
                f"library/functions.html#{name}"
            )
    for const in ("None", "True", "False", "Ellipsis", "NotImplemented"):
        yield const, "py:data", f"library/constants.html#{const}"
    for mod in PYTHON_MODULES:
        page = f"library/{mod}.html"
        yield mod, "py:module", f"{page}#module-{mod}"
        for name, obj in _public(mod):
            role = _role(obj)
            home = (getattr(obj, "__module__", None) or mod).split(".")[0]
            if role is None or home == "builtins":
                continue
            if mod == "typing":
                role = "py:data" if not inspect.isclass(obj) else role
            yield f"{mod}.{name}", role, f"{page}#{mod}.{name}"


# ----------------------------------------------------------------------------- PyTorch
TORCH_ATTRIBUTE_PAGES = {
    "torch.Tensor": "tensors.html#torch.Tensor",
    "torch.device": "tensor_attributes.html#torch.device",
    "torch.dtype": "tensor_attributes.html#torch.dtype",
    "torch.layout": "tensor_attributes.html#torch.layout",
    "torch.memory_format": "tensor_attributes.html#torch.memory_format",
    "torch.Size": "size.html#torch.Size",
    "torch.optim.Optimizer": "optim.html#torch.optim.Optimizer",
    "torch.nn": "nn.html#module-torch.nn",
    "torch.nn.functional": "nn.functional.html#module-torch.nn.functional",
    "torch.optim": "optim.html#module-torch.optim",
    "torch": "torch.html#module-torch",
    "torch.autograd": "autograd.html#module-torch.autograd",
    "torch.autograd.Function": "autograd.html#torch.autograd.Function",
}


def torch_entries() -> Iterator[Entry]:
    for name, uri in TORCH_ATTRIBUTE_PAGES.items():
        role = "py:module" if "#module-" in uri else "py:class"
        yield name, role, uri
    import torch

    for name in dir(torch.Tensor):
        if not name.startswith("_") and callable(getattr(torch.Tensor, name, None)):
            full = f"torch.Tensor.{name}"
            yield full, "py:method", f"generated/{full}.html#{full}"
    for mod in ("torch", "torch.nn", "torch.nn.functional", "torch.optim", "torch.nn.init",
                "torch.nn.parameter", "torch.utils.data"):
        module = importlib.import_module(mod)
        names = getattr(module, "__all__", None) or dir(module)
        for name in sorted(set(names)):
            full = f"{mod}.{name}"
            if name.startswith("_") or full in TORCH_ATTRIBUTE_PAGES:
                continue
            obj = getattr(module, name, None)
            role = _role(obj)
            if role is None:
                continue
            if mod == "torch.utils.data":
                yield full, role, f"data.html#{full}"
            else:
                yield full, role, f"generated/{full}.html#{full}"
    for method in ("forward", "to", "train", "eval", "parameters", "state_dict",
                   "load_state_dict", "named_modules", "modules", "cuda", "cpu", "apply"):
        yield f"torch.nn.Module.{method}", "py:method", (
            f"generated/torch.nn.Module.html#torch.nn.Module.{method}"
        )


# ----------------------------------------------------------------------------- NumPy, SciPy
def numpy_entries() -> Iterator[Entry]:
    yield "numpy", "py:module", "reference/index.html#module-numpy"
    for name, obj in _public("numpy"):
        role = _role(obj)
        if role is not None:
            yield f"numpy.{name}", role, f"reference/generated/numpy.{name}.html#numpy.{name}"
    yield "numpy.random.Generator", "py:class", (
        "reference/random/generator.html#numpy.random.Generator"
    )
    yield "numpy.random.default_rng", "py:function", (
        "reference/random/generator.html#numpy.random.default_rng"
    )
    yield "numpy.typing.ArrayLike", "py:data", "reference/typing.html#numpy.typing.ArrayLike"


SCIPY_MODULES = ["scipy.optimize", "scipy.stats", "scipy.special", "scipy.linalg",
                 "scipy.interpolate", "scipy.signal"]


def scipy_entries() -> Iterator[Entry]:
    for mod in SCIPY_MODULES:
        yield mod, "py:module", f"reference/{mod.split('.')[1]}.html#module-{mod}"
        for name, obj in _public(mod):
            role = _role(obj)
            if role is not None:
                yield f"{mod}.{name}", role, f"reference/generated/{mod}.{name}.html#{mod}.{name}"


# ----------------------------------------------------------------------------- matplotlib
def matplotlib_entries() -> Iterator[Entry]:
    for cls in ("matplotlib.figure.Figure", "matplotlib.axes.Axes"):
        yield cls, "py:class", f"api/_as_gen/{cls}.html#{cls}"
    yield "matplotlib.pyplot", "py:module", "api/pyplot_summary.html#module-matplotlib.pyplot"
    for name, obj in _public("matplotlib.pyplot"):
        if inspect.isfunction(obj) and getattr(obj, "__module__", "") == "matplotlib.pyplot":
            yield f"matplotlib.pyplot.{name}", "py:function", (
                f"api/_as_gen/matplotlib.pyplot.{name}.html#matplotlib.pyplot.{name}"
            )
    import matplotlib.axes

    for name in dir(matplotlib.axes.Axes):
        if not name.startswith("_") and inspect.isfunction(getattr(matplotlib.axes.Axes, name)):
            yield f"matplotlib.axes.Axes.{name}", "py:method", (
                f"api/_as_gen/matplotlib.axes.Axes.{name}.html#matplotlib.axes.Axes.{name}"
            )


# ----------------------------------------------------------------------------- ipywidgets
def ipywidgets_entries() -> Iterator[Entry]:
    """ipywidgets documents its widgets by example, on one page; every class links there."""
    yield "ipywidgets", "py:module", "index.html"
    for name, obj in _public("ipywidgets"):
        if inspect.isclass(obj):
            yield f"ipywidgets.{name}", "py:class", "examples/Widget%20List.html"
    yield "ipywidgets.Widget", "py:class", "examples/Widget%20Basics.html"
    yield "ipywidgets.widgets.widget.Widget", "py:class", "examples/Widget%20Basics.html"
    yield "ipywidgets.widgets.widget_box.VBox", "py:class", "examples/Widget%20List.html"


PROJECTS = {
    "python": ("Python", python_entries),
    "torch": ("PyTorch", torch_entries),
    "numpy": ("NumPy", numpy_entries),
    "scipy": ("SciPy", scipy_entries),
    "matplotlib": ("Matplotlib", matplotlib_entries),
    "ipywidgets": ("ipywidgets", ipywidgets_entries),
}


def _version(key: str) -> str:
    if key == "python":
        import sys

        return f"{sys.version_info.major}.{sys.version_info.minor}"
    return str(importlib.import_module(key).__version__).split("+")[0]


def write_inventory(key: str, out_dir: Path = HERE) -> Path:
    """Write ``<key>.inv`` in Sphinx's inventory format (version 2) and return its path."""
    project, entries = PROJECTS[key]
    seen: dict[str, tuple[str, str]] = {}
    for name, role, uri in entries():
        seen.setdefault(name, (role, uri))
    lines = [f"{name} {role} 1 {uri} -" for name, (role, uri) in sorted(seen.items())]
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {_version(key)}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    path = out_dir / f"{key}.inv"
    path.write_bytes(header + zlib.compress(("\n".join(lines) + "\n").encode(), 9))
    return path


if __name__ == "__main__":
    for key in PROJECTS:
        path = write_inventory(key)
        print(f"{path.relative_to(HERE.parent.parent)}: {path.stat().st_size} bytes")
