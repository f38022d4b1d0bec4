/**
 * URLs as they may be shown: a proxy URL carries its password (`http://user:pass@proxy:3128`),
 * and neither logs nor error messages may. The one way ferry prints such a URL.
 */

/** `url` with its password (if any) replaced by `***`; the user name is kept, it is not a secret. */
export function redactUrl(url: URL | string): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    // Not a URL: nothing can be shown safely but the fact.
    return '(an unreadable URL)';
  }
  if (u.password !== '') u.password = '***';
  return u.href.replace(/\/$/, u.pathname === '/' && !String(url).endsWith('/') ? '' : '/');
}
