#!/usr/bin/env bash
# Installs what ferry and its tests need on a fresh Debian machine: the Debian packages
# (OpenSSH client and server, the SFTP server the agent's built-in SSH server runs, rsync,
# nftables and iproute2 for the network-namespace tests, ssh-audit for the algorithm check,
# tmux and procps for the built-in server's terminal and process tests, dropbear's client and
# Debian's paramiko for the third-party client tests, systemd for `systemd-analyze verify` of the
# shipped units, asciinema whose reader checks the recordings, chromium for the web console's
# browser tests, tinyproxy as the real HTTP proxy of the WebSocket link's tests) and the npm packages. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# python3, make and g++ build the native modules (better-sqlite3, node-pty, ssh2's crypto binding);
# autossh is the benchmarks' recovery baseline.
packages=(openssh-client openssh-server openssh-sftp-server rsync nftables iproute2 ssh-audit tmux procps util-linux python3 make g++ autossh dropbear-bin python3-paramiko systemd asciinema chromium tinyproxy)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # Debian starts sshd on install; ferry does not need the system one running.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "setup: ferry needs Node.js 20 or newer; this is $(node --version)" >&2
  exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi
# The ferry command runs the compiled JavaScript in dist/. npm ci builds nothing (the package
# has no prepare script, so that installing a release needs no dev tools): build it here,
# every time, so that `scripts/setup.sh && npm run demo` runs the current sources.
npm run build --silent
