#!/usr/bin/env bash
# Create .venv with Python 3.10 and install kefu's pinned dependencies.
# Idempotent: does nothing when the requirements have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
  local candidate
  for candidate in "${KEFU_PYTHON:-}" "$(command -v python3.10 || true)"; do
    if [[ -n "$candidate" ]] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  local roots="${PYENV_ROOT:-$HOME/.pyenv /root/.pyenv}"
  for candidate in $(for r in $roots; do ls -d "$r"/versions/3.10.*/bin/python3.10 2>/dev/null; done | sort -rV); do
    if "$candidate" -c 'import venv' 2>/dev/null; then echo "$candidate"; return 0; fi
  done
  return 1
}

# Browser tests drive Debian's chromium with its chromedriver (never a downloaded browser),
# and screenshots need a CJK font.
BROWSER_PACKAGES="chromium chromium-driver fonts-wqy-microhei"
ensure_chromium() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null \
    && [[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]]; then return 0; fi
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's $BROWSER_PACKAGES for the browser tests"
    apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq $BROWSER_PACKAGES >/dev/null
  else
    echo "setup: the browser tests need Debian's packages: apt-get install $BROWSER_PACKAGES" >&2
  fi
}

# The proxy tests run Debian's nginx (its own prefix, free ports) in front of the desks.
ensure_nginx() {
  if command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]]; then return 0; fi
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian's nginx-light for the proxy tests"
    apt-get -o DPkg::Lock::Timeout=300 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq nginx-light >/dev/null
  else
    echo "setup: the proxy tests need Debian's nginx: apt-get install nginx-light" >&2
  fi
}

stamp_of() { cat pyproject.toml requirements.txt requirements-dev.txt constraints.txt | sha256sum | cut -c1-16; }
stamp=".venv/.kefu-setup-$(stamp_of)"
if [[ -f "$stamp" && -x .venv/bin/python ]]; then
  exit 0
fi

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
  if ! python=$(find_python); then
    echo "kefu needs Python 3.10 (Rasa 3.6 supports 3.8-3.10) and found none: install python3.10, or pyenv's 3.10 (under \$PYENV_ROOT/versions/, default /root/.pyenv/versions/), or point KEFU_PYTHON at one." >&2
    exit 1
  fi
  echo "setup: creating .venv with $python"
  rm -rf .venv
  "$python" -m venv .venv
fi

ensure_chromium
ensure_nginx
echo "setup: installing pinned dependencies (first run takes a few minutes)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check "pip<25" "setuptools<70.4" wheel
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
  -c constraints.txt -r requirements.txt -r requirements-dev.txt
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
.venv/bin/python -m pip check
rm -f .venv/.kefu-setup-*
touch "$stamp"
echo "setup: done"
