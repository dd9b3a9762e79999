"""Sphinx configuration of the anatile documentation site.

Build it with ``.venv/bin/python -m sphinx -W -b html docs docs/_build/html`` (the test
``tests/docs/test_docs_build.py`` does exactly this, warnings as errors).
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

import anatile  # noqa: E402

project = "anatile"
author = "the anatile developers"
copyright = "2026, the anatile developers"  # noqa: A001
release = anatile.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints"]

# MyST: $...$ / $$...$$ math, ::: fences, definition lists, heading anchors for
# cross-page links such as [drift](concepts/pcm_noise_drift.md#drift).
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist", "substitution"]
myst_heading_anchors = 3
myst_substitutions = {"version": release}

# autodoc: the public names of a package are its ``__all__``; the classes live in
# submodules and are re-exported, so members are taken from ``__all__``.
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True
autosummary_generate = False

# The code base uses Google-style docstrings (Args / Returns / Raises / Shape / Example).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # dataclass "Attributes:" become fields, not duplicate objects
napoleon_use_rtype = False
napoleon_custom_sections = ["Shape", "Events", "Panels"]

html_theme = "furo"
html_title = f"anatile {release}"
html_static_path: list[str] = []

# The user-guide pages (tile, inference, wpo, widgets, performance) and the packages are
# written by the people who write those parts and land progressively; the index lists them
# all and this hook leaves out the pages and API pages of parts that do not exist yet, so
# the site builds at every commit. A part that exists but fails to import is an error.
_GUIDE_PAGES = ["tile", "inference", "wpo", "widgets", "performance", "CONTRACTS"]
_log = logging.getLogger(__name__)


def _module_exists(modname: str) -> bool:
    """True when the package or module file exists (it may still fail to import: an error)."""
    path = DOCS.parent.joinpath(*modname.split("."))
    return (path / "__init__.py").exists() or path.with_suffix(".py").exists()


# Titles and captions of the browser-test screenshots in docs/img/ (file stem -> entry). A
# screenshot without an entry still appears in the gallery, titled with its file name.
GALLERY = {
    "tile_inspector": (
        "TileInspector",
        "Scales, target versus read weights and the error map of a programmed tile.",
    ),
    "inference_inspector": (
        "TileInspector on an InferenceTile",
        "Conductance histograms per device, programmed and drifted, and the time slider "
        "with the drift compensation alpha and the weight error.",
    ),
    "wpo_monitor": (
        "WPOMonitor",
        "A running optimization: loss per generation against the baseline and the target, "
        "and the current best g(w) curves.",
    ),
    "conductance_map": (
        "ConductanceMapView",
        "Baseline and optimized programming strategies side by side, with their TNMSE over "
        "time.",
    ),
    "model_inspector": (
        "ModelInspector",
        "Pick an analog layer of a converted model and inspect its tile.",
    ),
}


def _gallery_markdown() -> str:
    order = {stem: i for i, stem in enumerate(GALLERY)}
    images = sorted((DOCS / "img").glob("*.png"), key=lambda p: (order.get(p.stem, 99), p.name))
    if not images:
        return "\nNo screenshots yet: the browser test writes them to `docs/img/`.\n"
    blocks = []
    for img in images:
        default = img.stem.replace("_", " ").capitalize()
        title, caption = GALLERY.get(img.stem, (default, default))
        blocks.append(
            f"\n## {title}\n\n```{{figure}} img/{img.name}\n:alt: {title}\n:width: 100%\n\n"
            f"{caption}\n```\n"
        )
    return "".join(blocks)


def _fill_in_parts(app: Any, docname: str, source: list[str]) -> None:
    if docname == "gallery":
        source[0] = source[0].replace("<!-- screenshots -->", _gallery_markdown())
        return
    if docname.startswith("api/") and docname != "api/index":
        modname = "anatile." + docname.split("/", 1)[1]
        if not _module_exists(modname):
            _log.info("%s does not exist yet; its API page is a placeholder", modname)
            source[0] = f"# `{modname}`\n\nThis part of the package has not landed yet.\n"
        return
    if docname != root_doc:
        return
    lines = source[0].splitlines()
    kept = []
    for line in lines:
        name = line.strip()
        if name in _GUIDE_PAGES and not (DOCS / f"{name}.md").exists():
            _log.info("docs/%s.md does not exist yet; left out of the index", name)
            continue
        kept.append(line)
    source[0] = "\n".join(kept) + "\n"


class PublicSummary(SphinxDirective):
    """``.. anatile-summary:: anatile.tiles`` — an autosummary table of the module's ``__all__``.

    Keeps each API page's overview table in step with the package as names are added.
    """

    required_arguments = 1
    option_spec = {"exclude": directives.unchanged}

    def run(self) -> list[Any]:
        modname = self.arguments[0]
        module = importlib.import_module(modname)
        exclude = set((self.options.get("exclude") or "").split())
        names = [n for n in getattr(module, "__all__", []) if n not in exclude]
        lines = [f".. currentmodule:: {modname}", "", ".. autosummary::", "   :nosignatures:", ""]
        lines += [f"   {name}" for name in names]
        content = StringList(lines, source=f"<anatile-summary {modname}>")
        container = nodes.container()
        self.state.nested_parse(content, self.content_offset, container)
        return list(container.children)


# Docstrings write magnitudes as |x| (e.g. "largest |µS| weight"), which reStructuredText
# reads as a substitution reference. Escape such bars outside ``literals`` and :roles:`...`.
_LITERAL = re.compile(r"(``.+?``|`[^`]+`)")
_BARS = re.compile(r"(?<![\w\\|])\|(?=[^\s|])([^|\n]*?[^\s|\\])\|(?![\w|])")


def _escape_bars(line: str) -> str:
    parts = _LITERAL.split(line)
    for i in range(0, len(parts), 2):  # even parts are outside literals
        parts[i] = _BARS.sub(r"\\|\1\\|", parts[i])
    return "".join(parts)


def _escape_docstring_bars(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    lines[:] = [_escape_bars(line) for line in lines]


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _escape_docstring_bars)
    app.connect("source-read", _fill_in_parts)
    app.add_directive("anatile-summary", PublicSummary)
    return {"parallel_read_safe": True}
