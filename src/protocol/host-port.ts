/** HOST:PORT as ferry's flags, tokens and hints write it. Pure; the one parser for it. */

/** Splits HOST:PORT (with [v6]:PORT), or returns null. */
export function parseHostPort(text: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}
