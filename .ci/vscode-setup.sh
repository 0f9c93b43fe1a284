#!/usr/bin/env bash
# Installs what the VS Code client's build, unit tests and end-to-end test need:
#   - Debian packages: chromium (the e2e browser), ripgrep (stands in for @vscode/ripgrep's
#     GitHub download), libkrb5-dev (code-server's native `kerberos` module builds from source);
#   - the client's npm dependencies (`npm ci` in vscode-client/);
#   - code-server 4.100.3 (VS Code 1.100.3, the newest that runs on Node 20) in its own folder
#     under the cache dir, outside the repository.
# Idempotent (each step is skipped when already done), non-interactive, and it prints the
# code-server path on its last line. Environment:
#   WTLS_CACHE_DIR   where code-server and its temp files live (default ~/.cache/wtls-ci)
#   WTLS_SKIP_APT=1  do not touch Debian packages (when they are known to be there)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${WTLS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wtls-ci}
CODE_SERVER_VERSION=4.100.3
CODE_SERVER_DIR=$CACHE/code-server-$CODE_SERVER_VERSION
CODE_SERVER_BIN=$CODE_SERVER_DIR/node_modules/.bin/code-server
# @vscode/ripgrep (a code-server dependency) looks for a cached download of this exact file
# before it tries GitHub, which this network cannot reach.
RG_CACHE_NAME=vscode-ripgrep-cache-1.15.11
RG_TARBALL=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

export DEBIAN_FRONTEND=noninteractive
# node-pty's postinstall runs `npx node-gyp`, which would stop at a "Need to install?" prompt.
export npm_config_yes=true
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

log() { printf '[vscode-setup] %s\n' "$*" >&2; }

mkdir -p "$CACHE/tmp"
# A private TMPDIR: the ripgrep cache trick and node-gyp's scratch files must not meet other
# jobs' files in /tmp.
TMPDIR=$(mktemp -d "$CACHE/tmp/setup.XXXXXX")
export TMPDIR
trap 'rm -rf "$TMPDIR"' EXIT

# --- Debian packages ---------------------------------------------------------------------
apt_missing=()
for pkg in chromium ripgrep libkrb5-dev; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
        apt_missing+=("$pkg")
    fi
done
if ((${#apt_missing[@]})) && [[ ${WTLS_SKIP_APT:-0} != 1 ]]; then
    SUDO=()
    if [[ $(id -u) != 0 ]]; then SUDO=(sudo -n); fi
    log "apt-get install ${apt_missing[*]}"
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
command -v chromium >/dev/null || { log "chromium is missing"; exit 1; }
command -v rg >/dev/null || { log "ripgrep (rg) is missing"; exit 1; }

# --- the client's npm dependencies ----------------------------------------------------------
cd "$ROOT/vscode-client"
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
stamp=node_modules/.wtls-npm-ci
if [[ -f $stamp && $(cat "$stamp") == "$lock_sum" ]]; then
    log "vscode-client/node_modules is up to date"
else
    log "npm ci in vscode-client"
    npm ci --no-audit --no-fund --loglevel=error >&2
    echo "$lock_sum" >"$stamp"
fi

# --- code-server ---------------------------------------------------------------------------
installed_stamp=$CODE_SERVER_DIR/.wtls-installed
# code-server writes a config file into $HOME on any run, even --version: give it a throwaway one.
cs_version() { HOME=$TMPDIR "$CODE_SERVER_BIN" --version 2>/dev/null; }
if [[ -f $installed_stamp && -x $CODE_SERVER_BIN ]] && cs_version | grep -q "^$CODE_SERVER_VERSION "; then
    log "code-server $CODE_SERVER_VERSION is installed"
else
    log "installing code-server $CODE_SERVER_VERSION into $CODE_SERVER_DIR"
    rm -rf "$CODE_SERVER_DIR"
    mkdir -p "$CODE_SERVER_DIR" "$TMPDIR/$RG_CACHE_NAME" "$TMPDIR/rg"
    cp "$(command -v rg)" "$TMPDIR/rg/rg"
    tar -C "$TMPDIR/rg" -czf "$TMPDIR/$RG_CACHE_NAME/$RG_TARBALL" rg
    # Its own folder and package.json: a global or --prefix install breaks, because the
    # postinstall's nested `npm install` inherits those settings and overwrites itself.
    printf '{"name": "wtls-code-server", "private": true}\n' >"$CODE_SERVER_DIR/package.json"
    # npm ≥ 11 skips dependencies' install scripts unless approved; code-server's postinstall
    # (and the nested install it runs, which inherits this variable) must build native modules.
    (cd "$CODE_SERVER_DIR" \
        && npm_config_dangerously_allow_all_scripts=true \
            npm install "code-server@$CODE_SERVER_VERSION" --unsafe-perm --no-audit --no-fund \
            --loglevel=error >&2)
    cs_version >&2
    touch "$installed_stamp"
fi
echo "$CODE_SERVER_BIN"
