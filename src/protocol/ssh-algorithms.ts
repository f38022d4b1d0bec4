/**
 * The SSH algorithms ferry offers and accepts, on the relay and in the agent: only modern
 * ones, nothing `ssh-audit` marks as failing. AES-GCM comes first because with AES-NI it is
 * the fastest; the client's order decides, so the agent's links use it. AES-CTR comes after
 * the AEAD ciphers for older clients that have nothing else (Debian 12's paramiko 2.12), and
 * only with the encrypt-then-MAC MACs: the plain ones MAC the plaintext and ssh-audit warns
 * about them, while paramiko 2.12 already speaks the etm ones.
 */
export const SSH_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  serverHostKey: ['ssh-ed25519'],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr', 'aes256-ctr'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'],
  compress: ['none'],
};

/** The first, most preferred, key-exchange and host-key algorithm names of a KEXINIT payload (RFC 4253 §7.1), or null when it is malformed. */
export function preferredAlgorithms(kexinit: Uint8Array): { kex: string; serverHostKey: string } | null {
  // byte SSH_MSG_KEXINIT, byte[16] cookie, then the name-lists, each a uint32 length and ASCII names joined by commas.
  let at = 17;
  const firstNames: string[] = [];
  for (let list = 0; list < 2; list++) {
    if (at + 4 > kexinit.length) return null;
    const len = ((kexinit[at]! << 24) | (kexinit[at + 1]! << 16) | (kexinit[at + 2]! << 8) | kexinit[at + 3]!) >>> 0;
    at += 4;
    if (at + len > kexinit.length) return null;
    let name = '';
    for (let i = at; i < at + len && kexinit[i] !== 0x2c; i++) name += String.fromCharCode(kexinit[i]!);
    firstNames.push(name);
    at += len;
  }
  return { kex: firstNames[0]!, serverHostKey: firstNames[1]! };
}

/**
 * Whether the peer's guessed first key-exchange packet is to be used (RFC 4253 §7): the guess
 * is right when both sides put the same key-exchange and the same host-key algorithm first,
 * as OpenSSH and Dropbear judge it. Dropbear's looser `kexguess2@matt.ucc.asn.au` rule
 * applies only when both sides offer that name, and ferry does not.
 */
export function kexGuessIsRight(localKexinit: Uint8Array, remoteKexinit: Uint8Array): boolean {
  const local = preferredAlgorithms(localKexinit);
  const remote = preferredAlgorithms(remoteKexinit);
  return local !== null && remote !== null && local.kex === remote.kex && local.serverHostKey === remote.serverHostKey;
}
