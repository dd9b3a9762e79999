"""Real-browser fixtures: a throw-away JupyterLab on 127.0.0.1 and one headless Chromium.

Follows the recipe in BROWSER.md: every piece of Jupyter/matplotlib state lives in a temp dir,
the server never reaches the network, Chromium is Debian's (``/usr/bin/chromium``, installed
by ``scripts/install_browser.sh``; never ``playwright install``). When Chromium or Playwright
is missing the tests are skipped with a loud reason rather than silently passing.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
REPO_ROOT = Path(__file__).resolve().parents[2]


def _chromium() -> str | None:
    for path in CHROMIUM_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LabServer:
    """A running JupyterLab: where it serves, its token and the notebook root."""

    url: str
    token: str
    root: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def write_notebook(self, name: str, cells: list[str]) -> str:
        """Write ``cells`` (code) as ``<root>/<name>.ipynb``; returns the lab URL to open."""
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3",
            "language": "python",
        }
        nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
        nbformat.write(nb, self.root / f"{name}.ipynb")
        # a workspace per notebook, reset: the lab must not restore (and make current) a
        # notebook an earlier test opened
        return (f"{self.url}/lab/workspaces/{name}/tree/{name}.ipynb"
                f"?reset&token={self.token}")

    def log_tail(self, n: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n:]


def _wait_ready(url: str, token: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyterlab exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"jupyterlab did not answer within {timeout} s")


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """Start JupyterLab on a free 127.0.0.1 port with all state under a temp dir."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "root"
    root.mkdir()
    env = dict(os.environ)
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTERLAB_SETTINGS_DIR", "settings"),
        ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ("IPYTHONDIR", "ipython"),
        ("MPLCONFIGDIR", "mpl"),
    ]:
        (base / sub).mkdir()
        env[var] = str(base / sub)
    notif = base / "settings" / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # The kernel imports anatile from this checkout, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(REPO_ROOT), env.get("PYTHONPATH", "")] if p
    )
    token = secrets.token_hex(16)
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--ServerApp.jpserver_extensions=jupyter_lsp=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = base / "jupyterlab.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    server = LabServer(url=url, token=token, root=root, process=process, log_path=log_path)
    try:
        _wait_ready(url, token, process, timeout=90.0)
    except RuntimeError as exc:
        process.terminate()
        process.wait(timeout=10)
        pytest.fail(f"{exc}\n--- server log ---\n{server.log_tail()}")
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One headless Chromium for the session (Playwright allows one sync driver per process)."""
    exe = _chromium()
    if exe is None:
        pytest.skip(
            "BROWSER TESTS SKIPPED: no Chromium at /usr/bin/chromium — run "
            "`bash scripts/install_browser.sh` (Debian apt) to enable them"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        pytest.skip(f"BROWSER TESTS SKIPPED: playwright is not installed ({exc})")
    xdg = tmp_path_factory.mktemp("chromium-xdg")
    saved = {k: os.environ.get(k) for k in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME")}
    os.environ["XDG_CONFIG_HOME"] = str(xdg / "config")
    os.environ["XDG_CACHE_HOME"] = str(xdg / "cache")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class LabPage:
    """A fresh browser page on the lab server that records page errors and non-local requests.

    ``page_errors`` collects uncaught JS exceptions; ``external_requests`` every request whose
    URL does not point at 127.0.0.1 (data:/blob:/about: URLs are local by nature).
    """

    def __init__(self, page: Any, server: LabServer) -> None:
        self.page = page
        self.server = server
        self.page_errors: list[str] = []
        self.external_requests: list[str] = []
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("request", self._on_request)

    def _on_request(self, request: Any) -> None:
        url = request.url
        if url.startswith(("data:", "blob:", "about:")):
            return
        if not url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:")):
            self.external_requests.append(url)

    def open_and_run(self, name: str, cells: list[str], timeout_ms: int = 60_000) -> None:
        """Write a notebook, open it, wait for an idle kernel and run all cells."""
        page = self.page
        page.goto(self.server.write_notebook(name, cells))
        page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout_ms)
        page.evaluate("async () => { await window.jupyterapp.restored; }")
        # wait_for_function does not await promises: keep the predicate synchronous.
        page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout_ms)
        page.evaluate(
            "async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
        )
        self.wait_idle(timeout_ms)

    def add_and_run_cell(self, source: str, timeout_ms: int = 60_000) -> None:
        """Append a code cell to the open notebook and run it, as a user typing in a new
        cell below the widget would (the widget's output stays open above)."""
        self.page.evaluate(
            """async (source) => {
                const panel = window.jupyterapp.shell.currentWidget;
                const nb = panel.content;
                const n = nb.model.sharedModel.cells.length;
                nb.model.sharedModel.insertCell(n, {cell_type: 'code', source: source});
                nb.activeCellIndex = n;
                await window.jupyterapp.commands.execute('notebook:run-cell');
            }""",
            source,
        )
        self.wait_idle(timeout_ms)

    def wait_idle(self, timeout_ms: int = 60_000) -> None:
        """Wait until the kernel is idle again (after a grace period for the busy message)."""
        self.page.wait_for_timeout(400)
        self.page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout_ms)


_KERNEL_IDLE_JS = """() => {
    const w = window.jupyterapp.shell.currentWidget;
    const ctx = w && w.context;
    const k = ctx && ctx.sessionContext && ctx.sessionContext.session
        && ctx.sessionContext.session.kernel;
    return !!k && k.status === 'idle';
}"""


@pytest.fixture
def lab_page(chromium: Any, lab_server: LabServer) -> Iterator[LabPage]:
    """A fresh 1400×1000 page in its own browser context."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield LabPage(context.new_page(), lab_server)
    finally:
        context.close()
