/**
 * The agent's built-in SSH server. It listens nowhere: the only way in is a channel that
 * arrives over the agent's link to the relay. Logins are by the operator keys the relay
 * pushed for this device; sessions run as the requested local user.
 */
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Algorithms, AuthContext, Connection, PublicKeyAuthContext, ServerChannel } from 'ssh2';
import type { Logger } from '../../common/log.ts';
import { blobOf, hostKeyForServer, sameKey, verifySignature } from '../../common/ssh-keys.ts';
import { pipeBoth } from '../../net/pipe.ts';
import { connectTcp } from '../../net/tcp.ts';
import { OPEN_FAILURE, patchSsh2, rejectWithMessage, socketOf, surfaceEndOfWrite } from '../../net/ssh2-internals.ts';
import type { AuthorizedKey } from '../../protocol/authorized-keys.ts';
import { LIMITS } from '../../protocol/limits.ts';
import { SSH_ALGORITHMS } from '../../protocol/ssh-algorithms.ts';
import { VERSION } from '../../protocol/version.ts';
import { mayForward, type ForwardRule } from './forward-policy.ts';
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
}

/** How long a connection whose key was removed has to take its goodbye before its transport is destroyed. */
const REMOVED_KEY_CLOSE_MS = 1_000;

/** How long a connection whose client's input has ended may take to flush its last bytes before its transport is destroyed. */
const EOF_CLOSE_MS = 1_000;

/** One logged-in connection, by the key it authenticated with. */
interface Login { key: Buffer; operator: string; conn: Connection; channels: Set<ServerChannel>; log: Logger; ended: boolean }

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

  constructor(o: EmbeddedServerOptions) {
    patchSsh2();
    this.#o = o;
    this.#server = new Server({ hostKeys: [{ key: hostKeyForServer(o.hostKey) }], algorithms: SSH_ALGORITHMS as Algorithms, ident: EMBEDDED_SERVER_IDENT }, (conn) => this.#onConnection(conn));
    this.#server.on('error', (err: Error) => o.log.debug({ err: err.message }, 'embedded server error'));
  }

  /**
   * Replaces who may log in with the relay's latest list, and ends at once every connection
   * that logged in with a key no longer in it (sessions, forwards, the connection itself):
   * the relay cannot do that when the operator's hop to the device was someone else's.
   */
  setAuthorizedKeys(keys: readonly AuthorizedKey[]): void {
    this.#keys = keys;
    for (const login of this.#logins) {
      if (!this.#listed(login.key)) this.#endLogin(login);
    }
  }

  #listed(key: Buffer): AuthorizedKey | undefined {
    return this.#keys.find((k) => sameKey(blobOf(k.line), key));
  }

  /** Tells the client why on each session's stderr, closes the sessions (their processes with them), then the connection. */
  #endLogin(login: Login): void {
    this.#logins.delete(login);
    login.ended = true;
    login.log.warn({ operator: login.operator }, 'key removed by the relay: connection closed');
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
    const message = `ferry: the relay no longer lets this key log in to this device (operator '${login.operator}'); closing the connection\r\n`;
    for (const channel of sessions) {
      channel.once('close', () => { if (--open === 0) { clearTimeout(timer); end(); } });
      if (channel.writable) channel.stderr.write(message);
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
    let user: LocalUser | null = null;
    let operator: string | null = null;
    let key: Buffer | null = null;
    let refusal: string | null = null;
    let failures = 0;
    conn.on('error', (err) => log.debug({ err: err.message }, 'embedded connection error'));
    conn.on('authentication', (auth) => {
      // ssh2 emits 'ready' inside accept(), so who logged in is recorded before accepting.
      void this.#authenticate(auth, (who) => { user = who.user; operator = who.operator; refusal = who.refusal; key = who.key; }).then((result) => {
        // Like OpenSSH's MaxAuthTries: only failures count, not the 'none' probe or a key query.
        if (result === 'rejected' && auth.method !== 'none' && ++failures >= LIMITS.maxAuthAttempts) {
          auth.reject();
          conn.end();
        }
      });
    });
    conn.once('ready', () => {
      clearTimeout(arrival?.grace);
      const login: Login = { key: key!, operator: operator!, conn, channels: new Set(), log, ended: false };
      this.#logins.add(login);
      conn.on('close', () => this.#logins.delete(login));
      const track = (channel: ServerChannel) => {
        login.channels.add(channel);
        channel.once('close', () => login.channels.delete(channel));
      };
      // The list may have changed while the login user was looked up.
      if (!this.#listed(login.key)) return this.#endLogin(login);
      if (refusal !== null) return refuseSessions(conn, refusal, log.child({ operator }));
      log.info({ operator, user: user!.name }, 'login');
      // Nothing new starts on a connection that is being closed for its key.
      conn.on('session', (accept, reject) => (login.ended ? reject() : serveSession(accept(), user!, this.#agent.uid, log.child({ operator, user: user!.name }), track)));
      conn.on('tcpip', (accept, reject, info) => {
        if (login.ended) return reject();
        const dest = `${info.destIP}:${info.destPort}`;
        if (!mayForward(this.#o.forwardRules, info.destIP, info.destPort)) {
          log.warn({ operator, dest }, 'port forwarding refused: not in the allowlist');
          return rejectWithMessage(conn, reject, OPEN_FAILURE.prohibited, `${dest} is not in this device's forwarding allowlist (ferry agent --allow-forward)`);
        }
        connectTcp(info.destIP, info.destPort, LIMITS.targetConnectTimeoutMs).then(
          (socket) => pipeBoth(accept(), socket),
          (err: Error) => rejectWithMessage(conn, reject, OPEN_FAILURE.connectFailed, err.message),
        );
      });
      // Global requests are refused, except that ssh2 itself, only on a connection with a
      // 'request' listener, takes `no-more-sessions@openssh.com` (OpenSSH sends it after its
      // one session) and refuses every later session channel: hardening against a hijacked
      // connection, which this listener keeps on.
      conn.on('request', (_accept, reject) => reject?.());
      conn.on('openssh.streamlocal', (_accept, reject) => reject());
    });
  }

  /** Decides one authentication request: who logged in, a key query answered yes, or a rejection. */
  async #authenticate(auth: AuthContext, onSuccess: (who: { user: LocalUser | null; operator: string; refusal: string | null; key: Buffer }) => void): Promise<'accepted' | 'query' | 'rejected'> {
    if (auth.method !== 'publickey') {
      auth.reject(['publickey']);
      return 'rejected';
    }
    const pk = auth as PublicKeyAuthContext;
    const match = pk.key.algo === 'ssh-ed25519' ? this.#listed(pk.key.data) : undefined;
    if (!match) {
      pk.reject(['publickey']);
      return 'rejected';
    }
    const user = await this.#loginUser(pk.username);
    // An operator whose key is valid but whose login name is not usable here gets in only to be
    // told why (SSH has no other way to carry a message for a refused login), and can do nothing.
    const refusal = user !== null ? null : this.#agent.uid === 0
      ? `ferry: there is no user '${pk.username}' on this device`
      : `ferry: the agent on this device runs as '${this.#agent.name}', not as root, so it can only log you in as '${this.#agent.name}'`;
    if (!pk.signature) {
      pk.accept();
      return 'query';
    }
    if (!verifySignature(pk.key.data, pk.blob, pk.signature, pk.hashAlgo)) {
      pk.reject(['publickey']);
      return 'rejected';
    }
    onSuccess({ user, operator: match.user, refusal, key: pk.key.data });
    pk.accept();
    return 'accepted';
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
