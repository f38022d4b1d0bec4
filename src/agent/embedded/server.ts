/**
 * The agent's built-in SSH server. It listens nowhere: the only way in is a channel that
 * arrives over the agent's link to the relay. Logins are by the operator keys the relay
 * pushed for this device, each limited to the login names and forward targets the list
 * gives it; sessions run as the requested local user. What happens is reported (`report`)
 * for the relay's audit record, which cannot see inside these sessions.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Algorithms, AuthContext, Connection, PublicKeyAuthContext, ServerChannel, Session } from 'ssh2';
import type { Logger } from '../../common/log.ts';
import { blobOf, fingerprintOf, hostKeyForServer, sameKey, verifySignature } from '../../common/ssh-keys.ts';
import { pipeBoth } from '../../net/pipe.ts';
import { connectTcp } from '../../net/tcp.ts';
import { OPEN_FAILURE, patchSsh2, rejectWithMessage, socketOf, surfaceEndOfWrite } from '../../net/ssh2-internals.ts';
import type { AuthorizedKey } from '../../protocol/authorized-keys.ts';
import type { DeviceEvent, DeviceReport, ReportValue } from '../../protocol/device-report.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { SSH_ALGORITHMS } from '../../protocol/ssh-algorithms.ts';
import { VERSION } from '../../protocol/version.ts';
import { consoleLogin, forwardRefusal, loginRefusal } from './access.ts';
import type { ForwardRule } from './forward-policy.ts';
import { serveSession } from './session.ts';
import { agentUser, lookupUser, type LocalUser } from './users.ts';

const { Server } = ssh2;

/**
 * The built-in server's SSH software version. It starts with "OpenSSH" on purpose: OpenSSH's
 * client sends `eow@openssh.com` (its reader of the command's output has gone, as in
 * `ssh device CMD | head`) only to servers whose version matches its compat pattern
 * "OpenSSH*", and without that request the command never ends. "OpenSSH-compatible" (a dash,
 * no version number) matches none of OpenSSH's patterns for old versions' bugs, and is not
 * the `OpenSSH_X.Y` that other clients read as a version.
 */
const EMBEDDED_SERVER_IDENT = `OpenSSH-compatible ferry-agent_${VERSION}`;

/** What the built-in server needs. */
export interface EmbeddedServerOptions {
  /** The device's host key (private key text). */
  hostKey: string;
  /** Where `ssh -L` may go. */
  forwardRules: readonly ForwardRule[];
  log: Logger;
  /** How long a connection has to log in (default LIMITS.loginGraceMs; tests shorten it). */
  loginGraceMs?: number;
  /** Takes what happens here (logins, sessions, files, forwards) for the relay's audit record. */
  report?: (r: DeviceReport) => void;
}

/** Marks the reports of console logins (the relay's own, for an operator's browser terminal). */
const CONSOLE_DETAIL = { via: 'console' } as const;

/** How long a connection whose key was removed has to take its goodbye before its transport is destroyed. */
const REMOVED_KEY_CLOSE_MS = 1_000;

/** How long a connection whose client's input has ended may take to flush its last bytes before its transport is destroyed. */
const EOF_CLOSE_MS = 1_000;

/** Most key fingerprints named in one report of a connection that never logged in. */
const MAX_REPORTED_KEYS = 4;

/** An open `direct-tcpip` forward of a login; `close` ends it (both sides) for the reason given. */
interface OpenForward { host: string; port: number; close(why: string): void }

/**
 * One logged-in connection: the key it authenticated with, the login name it asked for, and
 * what it has open. `refused` logins got in only to be told why; `endReason` is set once the
 * device ends it, for the reports of what closes with it.
 */
interface Login {
  key: Buffer; operator: string; login: string; refused: boolean; conn: Connection; channels: Set<ServerChannel>;
  forwards: Set<OpenForward>; log: Logger; ended: boolean; endReason: string | null;
  /** A console login: the relay's key, for `operator` (whose grant in the list decides). */
  console: boolean;
}

/**
 * Who authenticated: the operator of the key, the login name asked for and its local user, or
 * why that login is refused; `console` when it was the relay's key on an operator's behalf.
 */
interface Who { user: LocalUser | null; operator: string; login: string; refusal: string | null; key: Buffer; console: boolean }

/** A short random id that ties one session's or forward's reports together. */
function reportId(): string {
  return randomBytes(6).toString('hex');
}

/** The built-in server: hand it each channel that arrives over the link. */
export class EmbeddedServer {
  readonly #server: InstanceType<typeof Server>;
  readonly #o: EmbeddedServerOptions;
  readonly #agent = agentUser();
  /** Each stream handed in, until ssh2 announces its connection: where it came from and its login grace timer. */
  readonly #arrivals = new WeakMap<object, { origin: { address: string; port: number }; grace: NodeJS.Timeout }>();
  readonly #logins = new Set<Login>();
  /** The operator keys that may log in now: the relay's latest list. */
  #keys: readonly AuthorizedKey[] = [];
  /** The relay's host key (wire blob) as verified against the pinned fingerprint on the current link; null before the first link. */
  #relayKey: Buffer | null = null;

  constructor(o: EmbeddedServerOptions) {
    patchSsh2();
    this.#o = o;
    this.#server = new Server({ hostKeys: [{ key: hostKeyForServer(o.hostKey) }], algorithms: SSH_ALGORITHMS as Algorithms, ident: EMBEDDED_SERVER_IDENT }, (conn) => this.#onConnection(conn));
    this.#server.on('error', (err: Error) => o.log.debug({ err: err.message }, 'embedded server error'));
  }

  /**
   * Replaces who may log in with the relay's latest list, and ends at once every connection
   * that logged in with a key no longer in it or as a login name the key may no longer use
   * (sessions, forwards, the connection itself), and every forward whose target the key may
   * no longer reach: the relay cannot do that when the operator's hop to the device was
   * someone else's.
   */
  setAuthorizedKeys(keys: readonly AuthorizedKey[]): void {
    this.#keys = keys;
    for (const login of this.#logins) {
      if (login.console) {
        const refusal = consoleLogin(this.#keys, login.operator, login.login).refusal;
        if (refusal) this.#endLogin(login, `${refusal}; closing the console session`, 'access revoked: login no longer allowed');
        continue;
      }
      const key = this.#listed(login.key);
      if (!key) {
        this.#endLogin(login, `ferry: the relay no longer lets this key log in to this device (operator '${login.operator}'); closing the connection`, 'access revoked: key removed');
        continue;
      }
      if (login.refused) continue;
      const refusal = loginRefusal(key, login.login);
      if (refusal) {
        this.#endLogin(login, `${refusal}; closing the connection`, 'access revoked: login no longer allowed');
        continue;
      }
      for (const forward of login.forwards) {
        const why = forwardRefusal(key, this.#o.forwardRules, forward.host, forward.port);
        if (why === null) continue;
        for (const channel of login.channels) if (channel.writable) channel.stderr.write(`ferry: closed the forward to ${forward.host}:${forward.port}: ${why}\r\n`);
        forward.close(`access revoked: ${why}`);
      }
    }
  }

  /**
   * Sets the relay's host key, as the link verified it against the fingerprint pinned at
   * enrollment (a key line): the key the relay logs in with for console sessions.
   */
  setRelayKey(line: string): void {
    this.#relayKey = blobOf(line);
  }

  #listed(key: Buffer): AuthorizedKey | undefined {
    return this.#keys.find((k) => sameKey(blobOf(k.line), key));
  }

  /** Whether `login` may still be logged in: its key is listed (console: its operator may still use its login). */
  #stillAllowed(login: Login): boolean {
    return login.console ? consoleLogin(this.#keys, login.operator, login.login).refusal === null : this.#listed(login.key) !== undefined;
  }

  /** Tells the client why (`message`) on each session's stderr, closes the sessions (their processes with them), then the connection. */
  #endLogin(login: Login, message: string, why: string): void {
    this.#logins.delete(login);
    login.ended = true;
    login.endReason = why;
    login.log.warn({ operator: login.operator, why }, 'access revoked by the relay: connection closed');
    for (const forward of login.forwards) forward.close(why);
    const transport = socketOf(login.conn) as Duplex | undefined;
    const end = () => {
      login.conn.end();
      // end() sends DISCONNECT and half-closes; a peer that does not answer must not keep the
      // connection: destroying the transport closes every channel, forwards included.
      setTimeout(() => transport?.destroy(), REMOVED_KEY_CLOSE_MS).unref();
    };
    // OpenSSH exits at DISCONNECT without printing what it has received and not yet written
    // out, but prints a channel's last bytes when the channel closes: so the sessions close
    // first, and the connection once they have (or after a while).
    const sessions = [...login.channels];
    if (sessions.length === 0) return end();
    const timer = setTimeout(end, REMOVED_KEY_CLOSE_MS);
    let open = sessions.length;
    for (const channel of sessions) {
      channel.once('close', () => { if (--open === 0) { clearTimeout(timer); end(); } });
      if (channel.writable) channel.stderr.write(`${message}\r\n`);
      channel.close();
    }
  }

  /** Serves one SSH connection carried by `stream` (a channel from the relay). */
  handle(stream: Duplex, origin: { address: string; port: number }): void {
    stream.on('error', () => {});
    // Watched here, not on the connection: ssh2 announces a connection only once the client's
    // identification has arrived, and a probe's EOF comes before it.
    stream.once('end', () => endTransport(stream));
    // The login grace time runs from the stream's arrival, as sshd's from accept(): a client
    // that never sends its identification has no connection in ssh2 to time out.
    const grace = setTimeout(() => stream.destroy(), this.#o.loginGraceMs ?? LIMITS.loginGraceMs);
    stream.once('close', () => clearTimeout(grace));
    // ssh2 announces the connection later; it is found again by its transport, this stream.
    this.#arrivals.set(stream, { origin, grace });
    this.#server.injectSocket(stream as never);
  }

  #onConnection(conn: Connection): void {
    const transport = socketOf(conn);
    const arrival = transport && this.#arrivals.get(transport);
    const origin = arrival?.origin ?? { address: 'unknown', port: 0 };
    const log = this.#o.log.child({ from: origin.address });
    if (!surfaceEndOfWrite(conn)) log.warn('this ssh2 version hides eow@openssh.com: `ssh device CMD | head` will not end the command');
    let who: Who | null = null;
    let failures = 0;
    // Keys offered that are not in the list, and the login name tried: reported once, when a
    // connection ends without logging in (a client tries its keys one after another).
    const unknownKeys = new Set<string>();
    let triedLogin: string | null = null;
    conn.on('error', (err) => log.debug({ err: err.message }, 'embedded connection error'));
    conn.on('authentication', (auth) => {
      triedLogin = auth.username;
      // ssh2 emits 'ready' inside accept(), so who logged in is recorded before accepting.
      void this.#authenticate(auth, (w) => { who = w; }, (fp) => { if (unknownKeys.size < MAX_REPORTED_KEYS) unknownKeys.add(fp); }).then((result) => {
        // Like OpenSSH's MaxAuthTries: only failures count, not the 'none' probe or a key query.
        if (result === 'rejected' && auth.method !== 'none' && ++failures >= LIMITS.maxAuthAttempts) {
          auth.reject();
          conn.end();
        }
      });
    });
    conn.once('close', () => {
      if (who === null && unknownKeys.size > 0) {
        this.#report('login.refused', null, triedLogin, { keys: [...unknownKeys].join(' '), from: origin.address, why: "no key offered is in this device's list from the relay" });
      }
    });
    conn.once('ready', () => {
      clearTimeout(arrival?.grace);
      const w = who!;
      const login: Login = { key: w.key, operator: w.operator, login: w.login, refused: w.refusal !== null, conn, channels: new Set(), forwards: new Set(), log, ended: false, endReason: null, console: w.console };
      this.#logins.add(login);
      conn.on('close', () => this.#logins.delete(login));
      const operator = w.operator;
      const keyFp = fingerprintOf(w.key);
      const via = w.console ? CONSOLE_DETAIL : {};
      // The list may have changed while the login user was looked up.
      if (!this.#stillAllowed(login)) {
        this.#report('login.refused', operator, w.login, { key: keyFp, from: origin.address, ...via, why: 'key removed by the relay while logging in' });
        return this.#endLogin(login, `ferry: the relay no longer lets this key log in to this device (operator '${operator}'); closing the connection`, 'access revoked: key removed');
      }
      if (w.refusal !== null) {
        this.#report('login.refused', operator, w.login, { key: keyFp, from: origin.address, why: w.refusal.replace(/^ferry: /, '') });
        return refuseSessions(conn, w.refusal, log.child({ operator }));
      }
      const user = w.user!;
      log.info({ operator, user: user.name, ...via }, 'login');
      this.#report('login', operator, user.name, { key: keyFp, from: origin.address, ...via });
      // Nothing new starts on a connection that is being closed for its key.
      conn.on('session', (accept, reject) => (login.ended ? reject() : this.#serveSession(login, accept(), user)));
      // A console login is for a terminal: the relay never forwards for an operator.
      conn.on('tcpip', (accept, reject, info) => (login.console ? reject() : this.#forward(login, accept, reject, info.destIP, info.destPort)));
      // Global requests are refused, except that ssh2 itself, only on a connection with a
      // 'request' listener, takes `no-more-sessions@openssh.com` (OpenSSH sends it after its
      // one session) and refuses every later session channel: hardening against a hijacked
      // connection, which this listener keeps on.
      conn.on('request', (_accept, reject) => reject?.());
      conn.on('openssh.streamlocal', (_accept, reject) => reject());
    });
  }

  /** Sends one report to whoever takes them. */
  #report(event: DeviceEvent, operator: string | null, login: string | null, detail: Record<string, ReportValue>): void {
    this.#o.report?.({ event, at: Date.now(), operator, login, detail });
  }

  /** Serves one session of `login`, reporting its start, its end and the files it reads and writes. */
  #serveSession(login: Login, session: Session, user: LocalUser): void {
    const id = reportId();
    let started = 0;
    const report = (event: DeviceEvent, detail: Record<string, ReportValue>) => this.#report(event, login.operator, user.name, { session: id, ...(login.console ? CONSOLE_DETAIL : {}), ...detail });
    serveSession(session, user, this.#agent.uid, login.log.child({ operator: login.operator, user: user.name }), {
      onChannel: (channel) => {
        login.channels.add(channel);
        channel.once('close', () => login.channels.delete(channel));
      },
      onStart: ({ kind, command, pty }) => {
        started = Date.now();
        report('session.start', { kind, ...(kind === 'subsystem' ? { subsystem: command } : { command }), pty });
      },
      onEnd: ({ code, signal }) => {
        const why = login.endReason ?? (code === null && signal === null ? 'client closed' : null);
        report('session.end', { ...(signal !== null ? { signal } : { exit: code }), durationMs: Date.now() - started, ...(why !== null ? { why } : {}) });
      },
      onFile: (e) => report('file', { path: e.path, op: e.op, bytes: e.bytes }),
    });
  }

  /** Opens a `direct-tcpip` forward of `login` when both its key's targets and the device's rules allow it; reports its start, end and bytes. */
  #forward(login: Login, accept: () => ServerChannel, reject: () => void, host: string, port: number): void {
    if (login.ended) return reject();
    const dest = `${host}:${port}`;
    const key = this.#listed(login.key);
    const refusal = key ? forwardRefusal(key, this.#o.forwardRules, host, port) : 'the key was removed';
    const refuse = (why: string, reason: number) => {
      login.log.warn({ operator: login.operator, dest, why }, 'port forwarding refused');
      this.#report('forward.refused', login.operator, login.login, { dest, why });
      rejectWithMessage(login.conn, reject, reason, why);
    };
    if (refusal !== null) return refuse(refusal, OPEN_FAILURE.prohibited);
    connectTcp(host, port, LIMITS.targetConnectTimeoutMs).then((socket) => {
      if (login.ended) {
        socket.destroy();
        return reject();
      }
      // The list may have changed while the connection was made.
      const now = this.#listed(login.key);
      const late = now ? forwardRefusal(now, this.#o.forwardRules, host, port) : 'the key was removed';
      if (late !== null) {
        socket.destroy();
        return refuse(late, OPEN_FAILURE.prohibited);
      }
      const channel = accept();
      const id = reportId();
      const started = Date.now();
      let bytesIn = 0;
      let bytesOut = 0;
      let why: string | null = null;
      const forward: OpenForward = { host, port, close: (w) => { why ??= w; socket.destroy(); } };
      channel.once('end', () => { why ??= 'client closed'; });
      socket.once('end', () => { why ??= 'target closed'; });
      login.forwards.add(forward);
      this.#report('forward.start', login.operator, login.login, { forward: id, dest });
      pipeBoth(channel, socket, () => {
        login.forwards.delete(forward);
        this.#report('forward.end', login.operator, login.login, { forward: id, dest, bytesIn, bytesOut, durationMs: Date.now() - started, why: login.endReason ?? why ?? 'closed' });
      });
      // Counted beside pipe()'s own readers: bytesIn from the operator to dest, bytesOut back.
      channel.on('data', (d: Buffer) => { bytesIn += d.length; });
      socket.on('data', (d: Buffer) => { bytesOut += d.length; });
    }, (err: Error) => refuse(err.message, OPEN_FAILURE.connectFailed));
  }

  /**
   * Decides one authentication request: who logged in, a key query answered yes, or a
   * rejection (`onUnknownKey` learns each key offered that is not listed).
   */
  async #authenticate(auth: AuthContext, onSuccess: (who: Who) => void, onUnknownKey: (fingerprint: string) => void): Promise<'accepted' | 'query' | 'rejected'> {
    if (auth.method !== 'publickey') {
      auth.reject(['publickey']);
      return 'rejected';
    }
    const pk = auth as PublicKeyAuthContext;
    // `OPERATOR:LOGIN` is a console login, and only the relay's own key may ask for one; no
    // local user name has a colon, so no operator login is lost to this.
    if (pk.username.includes(':')) return this.#authenticateConsole(pk, onSuccess);
    const match = pk.key.algo === 'ssh-ed25519' ? this.#listed(pk.key.data) : undefined;
    if (!match) {
      onUnknownKey(fingerprintOf(pk.key.data));
      pk.reject(['publickey']);
      return 'rejected';
    }
    // The key's own list of login names first: a name it may not use is not even looked up.
    const notListed = loginRefusal(match, pk.username);
    const user = notListed === null ? await this.#loginUser(pk.username) : null;
    // An operator whose key is valid but whose login name is not usable here gets in only to be
    // told why (SSH has no other way to carry a message for a refused login), and can do nothing.
    const refusal = notListed ?? (user !== null ? null : this.#agent.uid === 0
      ? `ferry: there is no user '${pk.username}' on this device`
      : `ferry: the agent on this device runs as '${this.#agent.name}', not as root, so it can only log you in as '${this.#agent.name}'`);
    return acceptSigned(pk, () => onSuccess({ user, operator: match.user, login: pk.username, refusal, key: pk.key.data, console: false }));
  }

  /**
   * A console login, `OPERATOR:LOGIN` with the relay's key (pinned at enrollment): accepted
   * only when the relay's list gives OPERATOR a key whose logins allow LOGIN, the same grant
   * that OPERATOR's own key would have here. A refusal is final (no getting in to be told
   * why): the relay is the client, and it reads the report.
   */
  async #authenticateConsole(pk: PublicKeyAuthContext, onSuccess: (who: Who) => void): Promise<'accepted' | 'query' | 'rejected'> {
    const at = pk.username.indexOf(':');
    const operator = pk.username.slice(0, at);
    const name = pk.username.slice(at + 1);
    const isRelay = this.#relayKey !== null && pk.key.algo === 'ssh-ed25519' && sameKey(pk.key.data, this.#relayKey);
    const refuse = (why: string) => {
      this.#report('login.refused', operator, name, { key: fingerprintOf(pk.key.data), ...CONSOLE_DETAIL, why });
      this.#o.log.warn({ operator, login: name, why }, 'console login refused');
      pk.reject(['publickey']);
      return 'rejected' as const;
    };
    if (!isRelay) return refuse(`'${pk.username}' is a console login, which only the relay's own key (pinned at enrollment) may use`);
    const refusal = consoleLogin(this.#keys, operator, name).refusal;
    if (refusal) return refuse(refusal.replace(/^ferry: /, ''));
    const user = await this.#loginUser(name);
    if (user === null) return refuse(this.#agent.uid === 0 ? `there is no user '${name}' on this device` : `the agent runs as '${this.#agent.name}', not as root, so it can only log in as '${this.#agent.name}'`);
    return acceptSigned(pk, () => onSuccess({ user, operator, login: name, refusal: null, key: pk.key.data, console: true }));
  }

  /** The local user for a login name: any user when the agent is root, else only the agent's own. */
  async #loginUser(name: string): Promise<LocalUser | null> {
    if (this.#agent.uid !== 0 && name !== this.#agent.name) return null;
    try {
      return await lookupUser(name);
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, 'user lookup failed');
      return null;
    }
  }
}

/**
 * The end of a key login that passed every check: a key query is answered yes (the client
 * still has to sign), a signature is verified, and only then is the login recorded
 * (`record`, before accept: ssh2 emits 'ready' inside accept()) and accepted.
 */
function acceptSigned(pk: PublicKeyAuthContext, record: () => void): 'accepted' | 'query' | 'rejected' {
  if (!pk.signature) {
    pk.accept();
    return 'query';
  }
  if (!verifySignature(pk.key.data, pk.blob, pk.signature, pk.hashAlgo)) {
    pk.reject(['publickey']);
    return 'rejected';
  }
  record();
  pk.accept();
  return 'accepted';
}

/**
 * Ends a connection whose client's side of the stream has ended, as sshd does when its input
 * ends, at any stage. ssh2 stops reading the connection then but keeps its own side open, so
 * a probe such as `ssh -W device:22 relay </dev/null`, which sends EOF before any byte, hung
 * for ever; one that had sent its identification, until the login grace time; and a
 * logged-in connection, its sessions' processes with it, for ever. Nothing more can be said
 * on the connection (ssh2 drops its protocol state when the input ends), so the transport is
 * ended: what was already written (the identification, say) still goes out, then EOF and
 * close. A peer that does not take those in time gets the transport destroyed.
 */
function endTransport(transport: Duplex): void {
  if (transport.destroyed) return;
  transport.end();
  setTimeout(() => transport.destroy(), EOF_CLOSE_MS).unref();
}

/** Every session of a connection whose login name was refused: the reason on stderr, exit 1. */
function refuseSessions(conn: Connection, message: string, log: Logger): void {
  log.info({ why: message }, 'login name refused');
  conn.on('session', (accept) => {
    const session = accept();
    const refuse = (acceptRequest: () => import('ssh2').ServerChannel) => {
      const ch = acceptRequest();
      ch.stderr.write(`${message}\r\n`);
      ch.exit(1);
      ch.end();
    };
    session.on('pty', (a) => a?.());
    session.on('env', (a) => a?.());
    session.on('shell', (a) => refuse(a));
    session.on('exec', (a) => refuse(a));
    session.on('subsystem', (a) => refuse(a));
  });
  conn.on('tcpip', (_accept, reject) => reject());
  // As for a usable login: this listener also keeps ssh2's handling of no-more-sessions@openssh.com on.
  conn.on('request', (_accept, reject) => reject?.());
}
