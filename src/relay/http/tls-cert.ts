/**
 * The HTTPS listener's certificate: the operator's own (--tls-cert, --tls-key), or a
 * self-signed one that the relay makes with the openssl program on first start and keeps in
 * the data dir, so that its fingerprint stays the same across restarts.
 */
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { FerryError } from '../../common/errors.ts';
import { LIMITS } from '../../protocol/limits.ts';

/** A certificate chain and key in PEM, with the leaf's SHA-256 fingerprint as browsers show it (AB:CD:…). */
export interface TlsMaterial {
  cert: string;
  key: string;
  fingerprint: string;
  /** True when the relay made it now (first start). */
  created: boolean;
}

/** The self-signed certificate inside a data dir. */
export const selfSignedCertPath = (dataDir: string): string => join(dataDir, 'https_cert.pem');
/** Its private key inside a data dir (mode 0600). */
export const selfSignedKeyPath = (dataDir: string): string => join(dataDir, 'https_key.pem');

/** Reads the operator's certificate and key files; throws FERRY_CONFIG_INVALID when either is unreadable or they do not belong together. */
export function loadGivenCert(certFile: string, keyFile: string): TlsMaterial {
  const read = (file: string, flag: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
      throw new FerryError('FERRY_CONFIG_INVALID', `${flag} ${file}: ${why}`, { cause: err });
    }
  };
  return checked(read(certFile, '--tls-cert'), read(keyFile, '--tls-key'), `--tls-cert ${certFile} and --tls-key ${keyFile}`, false);
}

/**
 * Returns the data dir's self-signed certificate, making it first when there is none. Its
 * names (SAN) are `hostName`, localhost and 127.0.0.1; a later change of host name keeps the
 * old certificate (delete both files to make a new one).
 */
export function loadOrCreateSelfSigned(dataDir: string, hostName: string): TlsMaterial {
  const certPath = selfSignedCertPath(dataDir);
  const keyPath = selfSignedKeyPath(dataDir);
  if (existsSync(certPath) && existsSync(keyPath)) {
    return checked(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8'), `${certPath} and ${keyPath}`, false);
  }
  const tmpCert = `${certPath}.tmp`;
  const tmpKey = `${keyPath}.tmp`;
  const names = [...new Set([hostName, 'localhost', '127.0.0.1'])].map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`));
  // umask 077 covers the moment between openssl writing the key and the chmod below. The
  // names are in the SAN, which browsers check; the CN is a fixed label (a host name may be
  // longer than the 64 characters a CN holds).
  const r = spawnSync('/bin/sh', ['-c', 'umask 077 && exec openssl "$@"', 'openssl',
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', tmpKey, '-out', tmpCert, '-days', String(LIMITS.selfSignedCertDays),
    '-subj', '/CN=ferry relay', '-addext', `subjectAltName=${names.join(',')}`,
  ], { encoding: 'utf8', timeout: LIMITS.opensslTimeoutMs });
  if (r.status !== 0) {
    rmSync(tmpCert, { force: true });
    rmSync(tmpKey, { force: true });
    const missing = r.status === 127 || /not found/.test(r.stderr ?? '') || (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
    throw new FerryError('FERRY_CONFIG_INVALID', missing
      ? 'the openssl program is needed to make the self-signed HTTPS certificate and was not found: install it (apt-get install openssl), or give --tls-cert and --tls-key, or --http-listen off'
      : `openssl could not make the self-signed HTTPS certificate: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
  }
  chmodSync(tmpKey, 0o600);
  chmodSync(tmpCert, 0o600);
  // The key lands first: a crash in between leaves a key without a certificate, which the next start replaces.
  renameSync(tmpKey, keyPath);
  renameSync(tmpCert, certPath);
  return { ...checked(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8'), certPath, false), created: true };
}

/** Parses `cert` and checks that `key` is its key, so that a wrong pair fails at start and not at the first browser. */
function checked(cert: string, key: string, what: string, created: boolean): TlsMaterial {
  let fingerprint: string;
  try {
    fingerprint = new X509Certificate(cert).fingerprint256;
    createSecureContext({ cert, key });
  } catch (err) {
    throw new FerryError('FERRY_CONFIG_INVALID', `${what} are not a usable HTTPS certificate and key (${(err as Error).message}): give a PEM certificate and the private key that belongs to it`, { cause: err });
  }
  return { cert, key, fingerprint, created };
}
