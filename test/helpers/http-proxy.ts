/**
 * A real HTTP proxy for tests of the agent's `--proxy`: tinyproxy in the foreground (`-d`),
 * from a config file written into a temp dir, optionally inside a network namespace. It
 * tunnels CONNECT to the ports it is told (and no others) and may demand basic auth. Its log
 * is a file in that dir, kept across restarts, so a test can read what it recorded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { eventually, missing, run } from './env.ts';
import { inNs, tcpProbe } from './netns.ts';

/** The proxy program, found on PATH (Debian's tinyproxy package puts it in /usr/bin). */
export const TINYPROXY = 'tinyproxy';
/** How long tinyproxy may take to accept connections after it was started. */
const PROXY_START_TIMEOUT_MS = 10_000;
/** How long tinyproxy may take to exit after SIGTERM before it is killed. */
const PROXY_STOP_TIMEOUT_MS = 5_000;
/** One readiness probe's connect timeout. */
const PROBE_MS = 500;

/** Why proxy tests cannot run here, or false when they can. */
export function httpProxySkipReason(): string | false {
  return missing(TINYPROXY, 'tinyproxy');
}

/** What the proxy is started with. */
export interface HttpProxyOptions {
  /** A directory for its config and log (a test's temp dir). */
  dir: string;
  /** The address it listens on, and its port. */
  host: string;
  port: number;
  /** The only ports CONNECT may reach (443 is always among them, as in tinyproxy's stock config). */
  connectPorts: number[];
  /** Client addresses or ranges it serves (tinyproxy's `Allow`); default every IPv4 address. */
  allow?: string[];
  /** Demand `Proxy-Authorization: Basic` with this user and password. */
  basicAuth?: { user: string; password: string };
  /** Run it inside this network namespace (readiness is probed from there too). */
  ns?: string;
}

/** A running (or stopped, between stop and start) tinyproxy. */
export interface HttpProxy {
  host: string;
  port: number;
  /** `http://[user:pass@]host:port`, as `--proxy` and HTTPS_PROXY take it. */
  url: string;
  /** The log file, and what it holds so far (every run's). */
  logFile: string;
  log(): string;
  /** Stops it (SIGTERM, which closes every tunnel it holds); resolves when the process is gone. */
  stop(): Promise<void>;
  /** Starts it again on the same address and config; resolves when it accepts connections. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
}

/** Writes tinyproxy's config. Quoted values: tinyproxy's parser rejects an unquoted path. */
function writeConfig(o: HttpProxyOptions, configFile: string, logFile: string): void {
  const ports = [...new Set([443, ...o.connectPorts])];
  writeFileSync(configFile, [
    `Port ${o.port}`,
    `Listen ${o.host}`,
    // Long enough that an idle link (keepalive every 20 s) is never cut by the proxy itself.
    'Timeout 600',
    'MaxClients 100',
    ...(o.allow ?? ['0.0.0.0/0']).map((a) => `Allow ${a}`),
    ...ports.map((p) => `ConnectPort ${p}`),
    ...(o.basicAuth ? [`BasicAuth ${o.basicAuth.user} ${o.basicAuth.password}`] : []),
    // No Via or X-Tinyproxy header: nothing but CONNECT passes anyway.
    'DisableViaHeader Yes',
    'LogLevel Info',
    `LogFile "${logFile}"`,
    '',
  ].join('\n'), { mode: 0o600 });
}

/** Whether a TCP connection to host:port succeeds from this process's namespace. */
function localProbe(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (ok: boolean) => { clearTimeout(timer); s.destroy(); resolve(ok); };
    const timer = setTimeout(() => done(false), PROBE_MS);
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Starts tinyproxy and waits until it accepts TCP connections (probed, from its namespace).
 * Registers its stop with `t`.
 */
export async function startHttpProxy(t: { after(fn: () => unknown): void }, o: HttpProxyOptions): Promise<HttpProxy> {
  const configFile = join(o.dir, `tinyproxy-${o.port}.conf`);
  const logFile = join(o.dir, `tinyproxy-${o.port}.log`);
  writeConfig(o, configFile, logFile);
  const auth = o.basicAuth ? `${encodeURIComponent(o.basicAuth.user)}:${encodeURIComponent(o.basicAuth.password)}@` : '';
  const command = [...(o.ns ? inNs(o.ns) : []), TINYPROXY, '-d', '-c', configFile];

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let output = '';

  const stop = async () => {
    const c = child;
    if (!c) return;
    child = null;
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      const killer = setTimeout(() => c.kill('SIGKILL'), PROXY_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(killer);
    }
  };

  const start = async () => {
    if (child && child.exitCode === null && child.signalCode === null) throw new Error(`tinyproxy on ${o.host}:${o.port} is already running`);
    const c = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    output = '';
    c.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
    c.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    const probe = o.ns ? async () => (await tcpProbe(o.ns!, o.host, o.port, PROBE_MS)) === 'connected' : () => localProbe(o.host, o.port);
    try {
      await eventually(async () => {
        if (c.exitCode !== null || c.signalCode !== null) {
          throw new Error(`tinyproxy exited (${c.exitCode ?? c.signalCode}) before accepting connections:\n${output}\n${existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''}`);
        }
        return probe();
      }, PROXY_START_TIMEOUT_MS, `tinyproxy to accept connections on ${o.host}:${o.port}`, 100);
    } catch (err) {
      await stop();
      throw err;
    }
  };

  t.after(stop);
  await start();
  return {
    host: o.host, port: o.port, url: `http://${auth}${o.host}:${o.port}`, logFile,
    log: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    stop, start,
    restart: async () => { await stop(); await start(); },
  };
}

const CONNECT_PROBE = `
const net = require('node:net');
const [host, port, target, auth, ms] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port) });
let got = '';
const done = (r) => { process.stdout.write(r); s.destroy(); process.exit(0); };
const timer = setTimeout(() => done('timeout'), Number(ms));
s.on('connect', () => s.write('CONNECT ' + target + ' HTTP/1.1\\r\\nHost: ' + target + '\\r\\n' + (auth ? 'Proxy-Authorization: Basic ' + Buffer.from(auth).toString('base64') + '\\r\\n' : '') + '\\r\\n'));
s.on('data', (d) => { got += d.toString('latin1'); const m = /^HTTP\\/1\\.[01] (\\d{3})/.exec(got); if (m) { clearTimeout(timer); done(m[1]); } });
s.on('error', (e) => { clearTimeout(timer); done(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code)); });
s.on('close', () => { clearTimeout(timer); done('closed'); });
`;

/**
 * Asks `proxy` from inside namespace `ns` to CONNECT to `target` (HOST:PORT), with basic auth
 * `user:password` when given. Resolves with the proxy's status code ('200', '403', '407', …),
 * or 'timeout', 'refused', 'closed' or an error code when no status line came.
 */
export async function connectThroughProxy(ns: string, proxy: { host: string; port: number }, target: string, auth: string | null, timeoutMs: number): Promise<string> {
  const r = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', CONNECT_PROBE, proxy.host, String(proxy.port), target, auth ?? '', String(timeoutMs)], { timeoutMs: timeoutMs + 10_000 });
  if (r.code !== 0) throw new Error(`CONNECT probe failed: ${r.stderr}`);
  return r.stdout.trim();
}
