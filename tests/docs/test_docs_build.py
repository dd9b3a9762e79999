"""The documentation site builds cleanly, runs every tutorial, and has no broken link.

One build (the slow part: it executes the tutorials and the figure pages with
``ANATILE_QUICK=1``) is shared by the checks below:

* warnings are errors, and ``docs/conf.py`` sets ``nitpicky``: every cross-reference
  resolves (our names through autodoc, torch/numpy/... through the inventories shipped in
  ``docs/_intersphinx``);
* every notebook in ``notebooks/`` is rendered, executed, with its outputs and within its
  time budget (``metadata.anatile.quick_time_budget_s``; checked by ``docs/conf.py``, a
  notebook over budget is a warning, so an error);
* every local link, image and script of every page exists, anchors included (the three
  ``_modules`` 404s of issue #14 would fail here, and so would a "[source]" link to a line
  anchor viewcode did not write);
* the site works offline: no page loads a script, stylesheet or image from the network
  (MathJax comes from ``docs/_static/mathjax``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

pytest.importorskip("sphinx", reason="the docs extra is not installed")
pytest.importorskip("myst_nb", reason="the docs extra is not installed")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    cmd = [
        sys.executable, "-m", "sphinx",
        "-W", "--keep-going",  # every warning is an error, but report all of them
        "-n",  # nitpicky: every cross-reference resolves (docs/conf.py sets it too)
        "-E", "-q",
        "-b", "html",
        "-d", str(out / "doctrees"),
        str(ROOT / "docs"), str(out / "html"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=ROOT)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    return out / "html"


def test_site_has_its_pages(site: Path) -> None:
    assert "anatile" in (site / "index.html").read_text(encoding="utf-8")
    for page in ("getting_started", "aihwkit", "gallery", "api/index", "concepts/wpo",
                 "changelog", "citing", "faq", "porting", "developer/index"):
        assert (site / f"{page}.html").exists(), page


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tutorial_is_rendered_with_outputs(site: Path, path: Path) -> None:
    page = site / "tutorials" / f"{path.stem}.html"
    assert page.exists(), f"{path.name} is not on the site"
    html = page.read_text(encoding="utf-8")
    assert 'class="cell_output' in html, f"{path.name}: no cell output (not executed?)"
    assert "<img" in html, f"{path.name}: no figure or widget image in the page"
    assert "Traceback" not in html, f"{path.name}: an exception in the rendered output"
    assert "application/vnd.jupyter.widget-view+json" not in html


def test_gallery_has_a_thumbnail_per_tutorial(site: Path) -> None:
    html = (site / "gallery.html").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        meta = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("anatile", {})
        assert "thumbnail" in meta, f"{path.name}: no metadata.anatile.thumbnail"
        assert f'href="tutorials/{path.stem}.html"' in html, path.name


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (tag/attribute, url)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id":
                self.ids.add(value)
            elif name in ("href", "src") and tag in ("a", "img", "script", "link", "source"):
                self.links.append((f"{tag}.{name}", value))


def _parse(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_no_broken_local_link(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    parsed = {page: _parse(page) for page in pages}
    broken = []
    for page, links in parsed.items():
        for kind, url in links.links:
            parts = urlsplit(url)
            if parts.scheme or url.startswith(("//", "mailto:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {kind} {url}")
            elif parts.fragment and target.suffix == ".html":
                # viewcode's "[source]" line anchors included (docs/conf.py, _prune_viewcode)
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append(f"{page.relative_to(site)}: {kind} {url} (no such anchor)")
    assert not broken, "broken links:\n" + "\n".join(broken[:50])


def test_site_loads_nothing_from_the_network(site: Path) -> None:
    remote = []
    for page in sorted(site.rglob("*.html")):
        for kind, url in _parse(page).links:
            if kind != "a.href" and re.match(r"^(https?:)?//", url):
                remote.append(f"{page.relative_to(site)}: {kind} {url}")
    assert not remote, "\n".join(remote[:20])
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in (site / "concepts" / "pcm_noise_drift.html").read_text(
        encoding="utf-8"
    ) or "_static/mathjax/tex-chtml.js" in index
    assert (site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
