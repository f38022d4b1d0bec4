/**
 * The SSH algorithms ferry offers and accepts, on the relay and in the agent: only modern
 * ones, nothing `ssh-audit` marks as failing. AES-GCM comes first because with AES-NI it is
 * the fastest; the client's order decides, so the agent's links use it.
 */
export const SSH_ALGORITHMS = {
  kex: ['curve25519-sha256', 'curve25519-sha256@libssh.org'],
  serverHostKey: ['ssh-ed25519'],
  cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com'],
  hmac: ['hmac-sha2-256-etm@openssh.com', 'hmac-sha2-512-etm@openssh.com'],
  compress: ['none'],
};
