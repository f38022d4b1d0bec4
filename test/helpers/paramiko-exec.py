"""Runs one command with paramiko, the way a Python tool would, and exits with its status.

Usage: paramiko-exec.py KEY KNOWN_HOSTS RELAY_PORT RELAY_USER COMMAND [DEVICE LOGIN]

With DEVICE and LOGIN, the command runs on DEVICE through the relay (a direct-tcpip channel
to DEVICE:22, then a second SSH session inside it, as `ssh -J` does); without them, on the
relay's command line. Host keys are checked against KNOWN_HOSTS (no trust on first use).
Prints the command's stdout, then the negotiated cipher and MAC on stderr.
"""
import sys

import paramiko


def session(transport, host_id, user, key, known):
    """Authenticates `transport` (already started) after checking its host key against `known`."""
    server_key = transport.get_remote_server_key()
    expected = known.lookup(host_id)
    if expected is None or expected.get(server_key.get_name()) != server_key:
        sys.exit(f"host key of {host_id} is not the pinned one")
    transport.auth_publickey(user, key)


def run(transport, command):
    """Runs `command` on `transport`; returns its exit status after copying its stdout."""
    chan = transport.open_session(timeout=10)
    chan.exec_command(command)
    out = b""
    while True:
        data = chan.recv(65536)
        if not data:
            break
        out += data
    sys.stdout.write(out.decode())
    return chan.recv_exit_status()


def main():
    key_path, known_path, port, relay_user, command = sys.argv[1:6]
    device = sys.argv[6] if len(sys.argv) > 6 else None
    key = paramiko.Ed25519Key.from_private_key_file(key_path)
    known = paramiko.HostKeys(known_path)
    relay = paramiko.Transport(("127.0.0.1", int(port)))
    relay.start_client(timeout=10)
    session(relay, f"[127.0.0.1]:{port}", relay_user, key, known)
    target = relay
    if device:
        login = sys.argv[7]
        chan = relay.open_channel("direct-tcpip", (device, 22), ("127.0.0.1", 0), timeout=10)
        target = paramiko.Transport(chan)
        target.start_client(timeout=10)
        session(target, device, login, key, known)
    sys.stderr.write(f"cipher={target.remote_cipher} mac={target.remote_mac}\n")
    status = run(target, command)
    target.close()
    relay.close()
    sys.exit(status)


main()
