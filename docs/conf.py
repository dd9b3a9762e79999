"""Sphinx configuration of the anatile documentation site.

Build it with ``.venv/bin/python -m sphinx -W -b html docs docs/_build/html`` (the test
``tests/docs/test_docs_build.py`` does exactly this, warnings as errors, nitpicky, then
checks every local link of the built pages).

The tutorials in ``notebooks/`` (linked into ``docs/tutorials/``) and the pages with code
cells (figures computed from the library) are executed during the build by myst-nb, with
``ANATILE_QUICK=1`` (reduced settings). A tutorial that raises, or that runs past the time
budget in its metadata (``metadata.anatile.quick_time_budget_s``), fails the build.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
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
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
# The notebook kernels are child processes: they import this checkout and run with the
# tutorials' reduced settings and one thread (small tensors on shared CI cores).
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
)
os.environ.setdefault("ANATILE_QUICK", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

import anatile  # noqa: E402

project = "anatile"
author = "the anatile developers"
copyright = "2026, the anatile developers"
release = anatile.__version__
version = release

sys.path.insert(0, str(DOCS / "_ext"))
extensions = [
    "config_fields",  # docs/_ext: config fields with defaults read from the dataclasses
    "autolink",  # docs/_ext: inline code naming an API object links to it
    "myst_nb",  # MyST markdown + notebooks executed at build time
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

# Every cross-reference must resolve (our names through autodoc, the others' through the
# inventories below); the test builds with -W -n, so an unresolved name fails it.
nitpicky = True
nitpick_ignore = [
    ("py:class", "anatile.config.base.T"),  # TypeVars, not objects
    ("py:class", "anatile.config.base.F"),
    ("py:class", "anatile.functional.threads.T"),
    ("py:exc", "traitlets.TraitError"),  # traitlets has no inventory here
    # protocols of the TileInspector's views, not documented yet
    ("py:class", "anatile.widgets.weights_view.WeightsHost"),
    ("py:class", "anatile.widgets.weights_view.WeightsState"),
]
# The builtin ``type`` in an annotation also matches config fields called ``type``
# (WeightClipParameter.type); Python's own type is meant, so the ambiguity is not reported.
suppress_warnings = ["ref.python"]
# Private helpers (a module or name starting with "_") are not documented by design; an
# annotation that names one stays plain text.
nitpick_ignore_regex = [("py:class", r"anatile(\.\w+)*\._\w+(\.\w+)*")]

# intersphinx with inventories shipped in the repository: the documentation machines (and
# many lab networks) are offline. docs/_intersphinx/build_inventories.py writes them from
# the installed packages and says how to refresh them.
_INV = DOCS / "_intersphinx"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(_INV / "python.inv")),
    "torch": ("https://pytorch.org/docs/stable/", str(_INV / "torch.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(_INV / "numpy.inv")),
    "scipy": ("https://docs.scipy.org/doc/scipy/", str(_INV / "scipy.inv")),
    "matplotlib": ("https://matplotlib.org/stable/", str(_INV / "matplotlib.inv")),
    "ipywidgets": ("https://ipywidgets.readthedocs.io/en/stable/", str(_INV / "ipywidgets.inv")),
}
intersphinx_disabled_reftypes = ["std:doc"]

# Names that annotations spell by their defining (private) module; the documentation
# knows them by their public name.
_REF_ALIASES = {
    "torch._C.Generator": "torch.Generator",
    "torch._C.device": "torch.device",
    "torch._C.dtype": "torch.dtype",
    "torch._C.Size": "torch.Size",
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "torch.optim.optimizer.Optimizer": "torch.optim.Optimizer",
    "ipywidgets.widgets.widget_box.VBox": "ipywidgets.VBox",
    # short names in the config field types (docs/_ext/config_fields.py)
    "Any": "typing.Any",
    "Callable": "collections.abc.Callable",
    "Sequence": "collections.abc.Sequence",
    "Tensor": "torch.Tensor",
    "torch.Tensor": "torch.Tensor",
    "Path": "pathlib.Path",
}

# MathJax from the site's own static files (docs/_static/mathjax, MathJax 3.2.2 from npm,
# Apache-2.0): formulas render without a network connection.
mathjax_path = "mathjax/tex-chtml.js"
# MathJax finds its fonts and TeX extensions next to its own script.
mathjax3_config = {"options": {"menuOptions": {"settings": {"assistiveMml": False}}}}

# myst-nb: execute the tutorials and the figure pages on every build (no cache: the build
# is the check that they still run). Widgets are shown through their static PNG fallback
# (``_repr_png_``), not as live widget views (which need a kernel and a CDN).
# ANATILE_DOCS_EXECUTE=0 skips execution for a quick look at the prose while writing.
nb_execution_mode = "force" if os.environ.get("ANATILE_DOCS_EXECUTE", "1") != "0" else "off"
nb_execution_timeout = 600  # per cell; the per-notebook budget is checked below
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_excludepatterns = ["_build/*"]
nb_merge_streams = True
nb_ipywidgets_js: dict[str, dict[str, str]] = {}
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("html", "image/png", 5),
]

source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = [
    "_build", "Thumbs.db", ".DS_Store", "**/.ipynb_checkpoints", "_intersphinx", "_static",
    "_generated/*.md",  # fragments included by other pages
]

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
autodoc_class_signature = "mixed"  # the constructor signature in the class header
autodoc_preserve_defaults = True
autosummary_generate = False

# The code base uses Google-style docstrings (Args / Returns / Raises / Shape / Example).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" of a non-dataclass become attribute entries one can link to
# (``InferenceTile.alpha``); a dataclass's are handled by docs/_ext/config_fields.py.
napoleon_use_ivar = False
napoleon_use_rtype = False
napoleon_custom_sections = ["Shape", "Events", "Panels"]

html_theme = "furo"
html_title = f"anatile {release}"
html_static_path = ["_static"]
html_css_files = ["anatile.css"]

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
        "Conductance converters side by side: their g(w) curves and their TNMSE over time.",
    ),
    "model_inspector": (
        "ModelInspector",
        "Pick an analog layer of a converted model and inspect its tile.",
    ),
    "model_inspector_tiles": (
        "ModelInspector: a layer split over tiles",
        "One table row per tile of a 2×3-tile layer; the layer view draws the tile "
        "boundaries and outlines tile (1, 1), opened by a click on its row.",
    ),
    "model_inspector_external_drift": (
        "ModelInspector after a drift in another cell",
        "drift_analog_weights(model, 3e7) run in a new cell: the open table, time control, "
        "layer view and tile inspector follow (every tile at one year).",
    ),
    "error_budget_model": (
        "Error budget of a model",
        "Weight MSE by source over time (parts plus interaction add up to the total "
        "marker), the largest source and the diagnosis with its fixes.",
    ),
    "inspector_hover": (
        "Hover",
        "The value under the pointer on the |error| heatmap: row, column, target, weight.",
    ),
    "inspector_click": (
        "Click on a heatmap cell",
        "The weight is marked in every view; its conductances per device and its "
        "trace over time are shown.",
    ),
    "wpo_monitor_midrun": (
        "WPOMonitor during a run",
        "The status and figures update while the optimizer runs (ETA shown only then).",
    ),
    "wpo_loss_midrun_1": (
        "WPOMonitor loss panel, early in a run",
        "Taken during the run ...",
    ),
    "wpo_loss_midrun_2": (
        "WPOMonitor loss panel, later in the same run",
        "... and a few seconds later: the panel moved (the browser test compares them).",
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
            f"\n### {title}\n\n```{{figure}} img/{img.name}\n:alt: {title}\n:width: 100%\n\n"
            f"{caption}\n```\n"
        )
    return "".join(blocks)


# ------------------------------------------------------------------------------ tutorials
TUTORIALS = DOCS / "tutorials"
NOTEBOOKS = ROOT / "notebooks"


def _tutorial_cards() -> str:
    """One card per tutorial: its thumbnail (``metadata.anatile.thumbnail``), title, summary."""
    cards = []
    for nb_path in sorted(TUTORIALS.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        meta = nb.get("metadata", {}).get("anatile", {})
        first = "".join(nb["cells"][0]["source"]).strip().splitlines()
        title = first[0].lstrip("# ").strip()
        summary = next((line for line in first[1:] if line.strip()), "")
        summary = meta.get("summary", summary)
        thumb = meta.get("thumbnail", "img/tile_inspector.png")
        cards.append(
            f":::{{container}} anatile-card\n"
            f"[![{title}]({thumb})](tutorials/{nb_path.name})\n\n"
            f"**[{title}](tutorials/{nb_path.name})**\n\n{summary}\n:::\n"
        )
    return "::::{container} anatile-gallery\n" + "\n".join(cards) + "::::\n"


def _copy_tutorials(app: Any, config: Any) -> None:
    """Copy every notebook of notebooks/ to docs/tutorials/ (git-ignored): all of them are
    then built, so executed, and none can be forgotten. Sphinx needs its sources inside
    docs/; a copy (not a link) keeps relative links and edit paths inside the site."""
    TUTORIALS.mkdir(exist_ok=True)
    wanted = {nb.name: nb for nb in NOTEBOOKS.glob("*.ipynb")}
    for stale in TUTORIALS.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, src in wanted.items():
        dst = TUTORIALS / name
        # links written for notebooks/ (../docs/page.md) point at the page from docs/tutorials/
        data = src.read_bytes().replace(b"](../docs/", b"](../")
        if dst.is_symlink() or not dst.exists() or dst.read_bytes() != data:
            dst.unlink(missing_ok=True)
            dst.write_bytes(data)


def _check_tutorial_budgets(app: Any, env: Any) -> None:
    """A tutorial that failed, or ran past its quick-settings budget, fails the build."""
    from myst_nb.sphinx_ import NbMetadataCollector

    # The budgets are for a machine of our own; on a shared one (the load average above the
    # core count) a notebook gets proportionally longer, as its threads wait for a core.
    load = max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    for docname, data in sorted(NbMetadataCollector.get_doc_data(env).items()):
        exec_data = data.get("exec_data")
        if not docname.startswith("tutorials/") or not exec_data:
            continue
        nb = json.loads((DOCS / f"{docname}.ipynb").read_text(encoding="utf-8"))
        budget = float(nb["metadata"].get("anatile", {}).get("quick_time_budget_s", 120.0))
        budget *= load
        runtime = exec_data.get("runtime") or 0.0
        _log.info("%s executed in %.1f s (budget %.0f s at load factor %.1f)",
                  docname, runtime, budget, load)
        if not exec_data.get("succeeded"):
            _log.warning("%s failed to execute: %s", docname, exec_data.get("error"))
        elif runtime > budget:
            _log.warning(
                "%s took %.1f s with ANATILE_QUICK=1, over its budget of %.0f s "
                "(metadata budget x load factor %.1f)", docname, runtime, budget, load,
            )


_MISSING = object()


def _lookup(dotted: str) -> Any:
    """The anatile object a dotted name reaches (module, then attributes), or ``_MISSING``."""
    if not dotted.startswith("anatile."):
        return _MISSING
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = inspect.getattr_static(obj, attr) if inspect.isclass(obj) else getattr(
                    obj, attr)
        except AttributeError:
            return _MISSING
        return getattr(obj, "__func__", obj)  # a classmethod/staticmethod: its function
    return _MISSING


def _same_object(domain: Any, node: Any, target: str) -> Any:
    """The documented entry of the object ``target`` names, found by identity.

    A docstring may name an object by its defining module
    (``anatile.functional.io_model.analog_mvm``, documented as
    ``anatile.functional.analog_mvm``), or name a method its class inherits
    (``:meth:`program_weights``` in :class:`InferenceTile`, documented on
    ``TileWithPeriphery``). The name is imported in the context of the reference (its
    module and class) and matched against the documented objects with the same last name.
    """
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module:
        candidates += [f"{module}.{cls}.{target}"] if cls else []
        candidates.append(f"{module}.{target}")
    head, _, rest = target.partition(".")
    if rest:  # ``InferenceTile.program_weights``: the documented class, then the attribute
        candidates += sorted(f"{name}.{rest}" for name in domain.objects
                             if name.startswith("anatile.") and name.endswith("." + head))
    obj = next((o for o in map(_lookup, candidates) if o is not _MISSING), _MISSING)
    if obj is _MISSING:
        return None
    leaf = "." + target.rsplit(".", 1)[-1]
    matches = sorted(
        (name for name, entry in domain.objects.items()
         if name.startswith("anatile.") and name.endswith(leaf) and not entry.aliased
         and _lookup(name) is obj),
        key=lambda name: (len(name), name),
    )
    return (matches[0], domain.objects[matches[0]]) if matches else None


def _resolve_alias(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve what the Python domain could not.

    * private spellings of other projects' names (``torch._C.Generator``) through their
      public name and intersphinx;
    * our own short names written in a docstring of another module (``ConfigError`` in a
      config's ``Raises:``, ``TileWithPeriphery.program_weights`` in ``anatile.nn``) when
      exactly one documented anatile object ends with that name;
    * our own objects named by their defining module, or inherited methods, through the
      object they are (:func:`_same_object`).

    An ambiguous or unknown name stays unresolved, and the nitpicky build reports it.
    """
    target = node.get("reftarget", "")
    public = _REF_ALIASES.get(target)
    if public is None and target.startswith("np."):
        public = "numpy." + target[3:]
    if public is None and target.startswith("nn."):
        public = "torch." + target
    if public is not None:
        from sphinx.ext.intersphinx import missing_reference

        node["reftarget"] = public
        return missing_reference(app, env, node, contnode)
    if node.get("refdomain") != "py" or not target:
        return None
    from sphinx.util.nodes import make_refnode

    domain = env.get_domain("py")
    suffix = "." + target.lstrip("~.")
    matches = {
        name: obj for name, obj in domain.objects.items()
        if name.startswith("anatile.") and name.endswith(suffix) and not obj.aliased
    }
    if len(matches) != 1:
        # the same object documented under its package and its module: prefer the package
        public_only = {n: o for n, o in matches.items() if "._" not in n}
        by_target = {(o.docname, o.node_id) for o in matches.values()}
        if len(by_target) != 1 and len(public_only) != 1:
            found = _same_object(domain, node, target.lstrip("~."))
            if found is None:
                return None
            name, obj = found
            return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id,
                                contnode, name)
        matches = public_only or matches
    name, obj = next(iter(sorted(matches.items(), key=lambda kv: len(kv[0]))))
    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, name)


def _reexported_data_doc(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A constant re-exported by a package gets the ``\"\"\"doc\"\"\"`` written in its submodule."""
    if what != "data" or lines or not name.startswith("anatile."):
        return
    from sphinx.pycode import ModuleAnalyzer

    package, attr = name.rsplit(".", 1)
    for modname in sorted(m for m in sys.modules if m.startswith(package + ".")):
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except Exception:
            continue
        if ("", attr) in docs:
            lines[:] = list(docs[("", attr)])
            return


def _skip_member(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> Any:
    """Leave out members whose only documentation would be another project's.

    An override without a docstring of ours (``set_extra_state``, ``forward`` of a
    torch Module, an ipywidgets hook) would show torch's or ipywidgets' text as if it
    were ours; dataclass fields are documented by docs/_ext/config_fields.py instead.
    """
    if type(obj).__name__ == "_tuplegetter":
        return True  # a NamedTuple field: its "Attributes:" entry documents it
    if skip:
        return None
    func = getattr(obj, "__func__", obj)
    if inspect.isfunction(func) and getattr(func, "__name__", name) not in (name, "<lambda>"):
        return True  # a field holding a function (WPOOptions.callback), not a method
    if (
        callable(func)
        and getattr(func, "__doc__", "") is None
        and str(getattr(func, "__module__", "")).startswith("anatile")
    ):
        return True
    return None


# viewcode's "[docs]" backlinks of a source page that must point elsewhere: page -> {wrong
# href: right href} (filled by _prune_viewcode, applied by _fix_viewcode_backlinks).
_VIEWCODE_BACKLINKS: dict[str, dict[str, str]] = {}


def _prune_viewcode(app: Any) -> list[Any]:
    """Source pages only for our modules, each highlighted object linked back to its entry.

    ``typing.NamedTuple`` classes give their generated methods a module called
    ``namedtuple_<Name>``, which has no source; viewcode would list it in
    ``_modules/index.html`` with a link to a page it never writes.

    viewcode anchors every documented object on the source page of its defining module
    (the target of its "[source]" link), and links the anchor back to
    ``<refname>.<name>``, where ``refname`` is one module per source page: the module the
    first documented object of that page was documented under. A name documented under
    another module (``InitFieldsMixin`` as ``anatile.config.base.InitFieldsMixin`` when
    ``refname`` is ``anatile.config``) would get a dead backlink; its backlink is redirected
    to the entry the object is documented as (found by identity), so the anchor stays.
    """
    env = app.builder.env
    modules = getattr(env, "_viewcode_modules", {})
    for name in [m for m in modules if not m.startswith("anatile")]:
        del modules[name]
    domain = env.get_domain("py")
    uri = app.builder.get_relative_uri
    _VIEWCODE_BACKLINKS.clear()
    for modname, entry in modules.items():
        if not entry:
            continue
        used, refname = entry[2], entry[3]
        page = "_modules/" + modname.replace(".", "/")
        for name in list(used):
            if f"{refname}.{name}" in domain.objects:
                continue
            obj = _lookup(f"{modname}.{name}")
            leaf = "." + name.rsplit(".", 1)[-1]
            found = sorted(
                (full for full, e in domain.objects.items()
                 if full.startswith("anatile.") and full.endswith(leaf) and not e.aliased
                 and obj is not _MISSING and _lookup(full) is obj),
                key=lambda full: (len(full), full),
            )
            if not found:  # nothing to link back to: no anchor, no "[source]" link to it
                del used[name]
                continue
            target = domain.objects[found[0]]
            wrong = f"{uri(page, used[name])}#{refname}.{name}"
            right = f"{uri(page, target.docname)}#{target.node_id}"
            _VIEWCODE_BACKLINKS.setdefault(page, {})[wrong] = right
    return []


def _fix_viewcode_backlinks(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    for wrong, right in _VIEWCODE_BACKLINKS.get(pagename, {}).items():
        context["body"] = context["body"].replace(f'href="{wrong}"', f'href="{right}"')


def _public_bases(app: Any, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """Show public bases only: a private helper base is replaced by its own bases."""
    out: list[Any] = []
    todo = list(bases)
    while todo:
        base = todo.pop(0)
        module = getattr(base, "__module__", "")
        private = base.__name__.startswith("_") or any(
            part.startswith("_") for part in module.split(".")
        )
        if module.startswith("anatile") and private:
            todo[:0] = [b for b in base.__bases__ if b is not object]
        elif base not in out:
            out.append(base)
    bases[:] = out or [object]


# Benchmark sections of the performance page, in this order (others follow by name).
_BENCHMARKS = ["inference", "tile", "wpo", "wpo-kernels", "widgets", "analysis"]


def _benchmark_sections() -> str:
    """The fragments the benchmarks wrote (docs/_generated/perf_<name>.md), verbatim."""
    found = {p.stem[len("perf_"):]: p for p in (DOCS / "_generated").glob("perf_*.md")}
    order = [n for n in _BENCHMARKS if n in found] + sorted(set(found) - set(_BENCHMARKS))
    parts = [f"({'perf-' + name})=\n{found[name].read_text(encoding='utf-8')}" for name in order]
    return "\n".join(parts) or "No benchmark has been run yet.\n"


def _fill_in_parts(app: Any, docname: str, source: list[str]) -> None:
    if docname == "performance":
        source[0] = source[0].replace("<!-- benchmark sections -->", _benchmark_sections())
        return
    if docname == "gallery":
        source[0] = source[0].replace("<!-- screenshots -->", _gallery_markdown())
        source[0] = source[0].replace("<!-- tutorials -->", _tutorial_cards())
        return
    if docname.startswith("api/") and docname != "api/index":
        modname = "anatile." + docname.split("/", 1)[1]
        if not _module_exists(modname):
            _log.info("%s does not exist yet; its API page is a placeholder", modname)
            source[0] = f"# `{modname}`\n\nThis part of the package has not landed yet.\n"
        return
    if docname == "developer/index" and not (DOCS / "architecture.md").exists():
        source[0] = source[0].replace("/architecture\n", "")
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
    app.connect("config-inited", _copy_tutorials)
    app.connect("env-updated", _check_tutorial_budgets)
    app.connect("missing-reference", _resolve_alias)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("autodoc-process-docstring", _reexported_data_doc)
    app.connect("html-collect-pages", _prune_viewcode, priority=400)  # before viewcode's
    app.connect("html-page-context", _fix_viewcode_backlinks)
    return {"parallel_read_safe": True}
