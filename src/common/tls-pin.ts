/**
 * TLS public-key pins, as curl's --pinnedpubkey writes them: `sha256//` + base64 of the
 * SHA-256 of the certificate's DER SubjectPublicKeyInfo. A pin names the key, not the
 * certificate, so a certificate renewed with the same key keeps its pin.
 */
import { createHash, X509Certificate } from 'node:crypto';

/** The pin of a certificate (PEM text, DER bytes, or a parsed X509Certificate). */
export function tlsPinOf(cert: string | Buffer | X509Certificate): string {
  const x509 = cert instanceof X509Certificate ? cert : new X509Certificate(cert);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256//${createHash('sha256').update(spki).digest('base64')}`;
}
