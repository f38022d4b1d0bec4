#!/usr/bin/env bash
# Runs a command (the test suite) with Debian's stock shell dotfiles in the invoking user's
# home, in a private mount namespace, so that nothing outside that command sees a change.
#
# Why: the suite logs in to devices as the user running it (root in CI) and starts real
# shells, which read that user's ~/.bashrc and ~/.profile, as under sshd. Those files belong
# to the machine, not to the suite. On the CI machines root's .bashrc runs `pyenv init`,
# whose rehash takes a lock file; a test that kills a session's process group (a signal
# request, a closed channel) while that rehash runs leaves the lock behind, and from then on
# every shell waits 60 s for it: every later login test fails. With the stock files the
# shells start as on a fresh Debian install.
#
# Only as root, and only where `unshare` can make a mount namespace; otherwise the command
# runs as it is (a developer's own dotfiles are theirs to keep sane).
set -euo pipefail

if [[ $(id -u) -ne 0 || -n ${FERRY_STOCK_DOTFILES:-} ]] || ! unshare --mount true 2>/dev/null; then
  exec "$@"
fi

home=$(getent passwd "$(id -un)" | cut -d: -f6)
binds=()
for f in .bashrc .profile .bash_profile .bash_login .bash_logout; do
  [[ -e $home/$f ]] || continue
  if [[ -e /etc/skel/$f ]]; then binds+=("/etc/skel/$f" "$home/$f"); else binds+=(/dev/null "$home/$f"); fi
done

# In the new namespace: bind each stock file over the home's, then run the command.
export FERRY_STOCK_DOTFILES=1
exec unshare --mount --propagation private bash -c '
  set -euo pipefail
  args=("$@")
  n=${args[0]}
  for ((i = 1; i <= n; i += 2)); do mount --bind "${args[i]}" "${args[i+1]}"; done
  shift $((n + 1))
  exec "$@"
' stock-dotfiles "${#binds[@]}" "${binds[@]}" "$@"
