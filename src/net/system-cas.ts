/**
 * The TLS contexts of the wss:// dialer. An endpoint without a pin is checked against Node's
 * own CA list plus the system's bundle, so that a CA an admin installed on the device
 * (update-ca-certificates, a company's CA) counts as it does for curl. Node 20 reads only its
 * built-in list unless started with --use-openssl-ca.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

/** Where Linux distributions (and macOS) keep the system bundle, first match wins. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];

let cached: string[] | null = null;
let context: SecureContext | null = null;

/** Node's CAs and the system bundle's (read once). */
export function trustedCas(): string[] {
  if (cached !== null) return cached;
  let bundle: string | null = null;
  for (const file of SYSTEM_BUNDLES) {
    try {
      bundle = readFileSync(file, 'utf8');
      break;
    } catch {
      // Not on this system; the next one, or Node's own list alone.
    }
  }
  cached = bundle === null ? [...rootCertificates] : [...rootCertificates, bundle];
  return cached;
}

/**
 * A TLS context that trusts `trustedCas()`, made once: passing the CA list to every connect
 * would parse the whole bundle again at each dial.
 */
export function trustedContext(): SecureContext {
  context ??= createSecureContext({ ca: trustedCas() });
  return context;
}

let pinnedContext: SecureContext | null = null;

/**
 * The TLS context for a pinned endpoint (the key is checked after the handshake, no CA list),
 * made once. Without it every connect makes a context of its own: about 0.3 ms of CPU against
 * 0.07 ms with a shared one (Node 20), paid on every attempt of a device's retry loop.
 */
export function pinnedTlsContext(): SecureContext {
  pinnedContext ??= createSecureContext({});
  return pinnedContext;
}
