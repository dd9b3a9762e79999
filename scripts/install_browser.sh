#!/usr/bin/env bash
# Install Debian's Chromium for the real-browser JupyterLab tests (Playwright drives it;
# never `playwright install`, which downloads browsers). Needs root or passwordless sudo.
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "install_browser: not root and no sudo: the browser tests will be skipped" >&2
        exit 0
    fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null 2>&1 || true
$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
    || echo "install_browser: apt-get install chromium failed: the browser tests will be skipped" >&2
