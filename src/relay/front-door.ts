/**
 * The relay's SSH front door: accepts transport streams (TCP connections from its own
 * listener, WebSocket links from the HTTPS listener's /v1/agent), sheds what is over the
 * limits, runs a bounded number of handshakes at a time (admission.ts), authenticates, and
 * hands each connection to the part that serves its kind of principal (operator, device,
 * enrolling agent). Everything past the transport is the same for both.
 */
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { Algorithms, AuthContext, Connection, PublicKeyAuthContext } from 'ssh2';
import { blobOf, hostKeyForServer, offeredKey, sameKey, verifySignature, type PublicKey } from '../common/ssh-keys.ts';
import { AGENT_LOGIN, ENROLL_LOGIN } from '../protocol/names.ts';
import { AGENT_LINK_PATH } from '../protocol/relay-endpoint.ts';
import { SSH_ALGORITHMS } from '../protocol/ssh-algorithms.ts';
import { LIMITS } from '../protocol/limits.ts';
import { socketOf } from '../net/ssh2-internals.ts';
import { coalesceWrites } from '../net/tcp.ts';
import { HandshakeSlots, laneOf, MAX_IDENT_BYTES, perAddressShare } from './admission.ts';
import type { RelayContext } from './context.ts';
import { serveDeviceLink } from './device-link.ts';
import { serveEnrollment } from './enrollment.ts';
import { serveOperator } from './operator-session.ts';
import { mayHoldLink } from './policy.ts';
import { AuditRateLimit } from './audit-rate.ts';

const { Server: SshServer } = ssh2;

/** How a stream reached the relay: its own TCP listener, or a WebSocket on the HTTPS listener. */
export type LinkTransport = 'tcp' | 'wss';

/** One transport stream for the front door, with where it came from (for a WebSocket, the client as --trusted-proxy lets the relay see it). */
export interface IncomingStream {
  stream: Duplex;
  remoteAddress: string;
  remotePort: number;
  transport: LinkTransport;
}

/** Who a connection logged in as, by its kind (an operator becomes a relay Principal in serveOperator). */
type LoginOf =
  | { kind: 'operator'; user: string; keyFingerprint: string }
  | { kind: 'device'; name: string }
  | { kind: 'enroll'; key: PublicKey };

interface PendingState {
  address: string; transport: LinkTransport; principal: LoginOf | null; attempts: number; authenticated: boolean;
  /** The last refused attempt (user name tried, key, why), for the relay.login.refused row if none succeeds. */
  refused: { user: string; key: string | null; why: string } | null;
  grace: { cancel(): void };
  /** Set while the connection waits for a handshake slot: drops it when it has waited too long. */
  queued: { cancel(): void } | null;
}

/** The SSH listener and its per-connection policy. */
export class FrontDoor {
  readonly #ctx: RelayContext;
  readonly #ssh: InstanceType<typeof SshServer>;
  readonly #tcp: NetServer;
  readonly #states = new WeakMap<Duplex, PendingState>();
  readonly #unauthByAddress = new Map<string, number>();
  readonly #sockets = new Set<Duplex>();
  readonly #slots: HandshakeSlots<Duplex>;
  /** Connections that have not sent their identification line yet (and so have no lane). */
  #unidentified = 0;
  /** Bounds the relay.login.refused rows: a flood of bad logins must not flood the audit log. */
  readonly #refusals: AuditRateLimit;
  #stopped = false;

  constructor(ctx: RelayContext, hostKey: string) {
    this.#ctx = ctx;
    const c = ctx.config;
    this.#refusals = new AuditRateLimit(ctx.clock, c.loginRefusalAudit, (left) => ctx.store.audit({
      at: ctx.clock.now(), actor: 'relay', action: 'relay.login.refused', target: null,
      detail: { suppressed: left.suppressed, from: left.from, until: left.until, why: `${left.suppressed} more refused logins in this window were not written one by one (rate limit)` },
    }));
    this.#slots = new HandshakeSlots(
      { device: c.maxHandshakes, interactive: c.maxInteractiveHandshakes },
      { device: perAddressShare(c.maxHandshakes, c.handshakeSharePerAddress), interactive: perAddressShare(c.maxInteractiveHandshakes, c.interactiveHandshakeSharePerAddress) },
    );
    this.#ssh = new SshServer({
      hostKeys: [{ key: hostKeyForServer(hostKey) }],
      algorithms: SSH_ALGORITHMS as Algorithms,
      ident: 'ferry-relay',
      keepaliveInterval: ctx.config.keepaliveIntervalMs,
      keepaliveCountMax: ctx.config.keepaliveCountMax,
    }, (conn, info) => this.#onConnection(conn, info));
    this.#ssh.on('error', (err: Error) => ctx.log.debug({ err: err.message }, 'ssh server error'));
    this.#tcp = createServer({ noDelay: true, highWaterMark: LIMITS.socketBufferBytes }, (socket) => this.#acceptTcp(socket));
    this.#tcp.on('error', (err) => ctx.log.error({ err: err.message }, 'ssh listener error'));
  }

  /** Starts listening; resolves with the bound address. */
  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#tcp.once('error', reject);
      this.#tcp.listen({ host, port, backlog: 4096 }, () => {
        this.#tcp.off('error', reject);
        const a = this.#tcp.address() as { address: string; port: number };
        resolve({ host: a.address, port: a.port });
      });
    });
  }

  /**
   * Stops accepting, and destroys whatever connection has not closed by `graceMs` later
   * (a peer that never answers our FIN must not hold the shutdown).
   */
  close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
    let forced!: () => void;
    const destroyed = new Promise<void>((resolve) => { forced = resolve; });
    const timer = this.#ctx.clock.setTimeout(() => {
      for (const s of this.#sockets) s.destroy();
      forced();
    }, graceMs);
    // The TCP listener's close waits for its own connections only; streams that came from the
    // HTTPS listener (wss links) are held to the same grace.
    const drained = () => (this.#sockets.size === 0 ? undefined : destroyed);
    // The summary of refused logins left out goes in now, while the store is still open;
    // a connection that closes after this is not written (the store closes next).
    return closed.then(drained).finally(() => { timer.cancel(); this.#refusals.flush(); this.#stopped = true; });
  }

  /** SSH handshakes running and connections queued for one, per lane. */
  handshakes(): ReturnType<HandshakeSlots<Duplex>['counts']> { return this.#slots.counts(); }

  /** Connections open now, authenticated or not. */
  get connections(): number { return this.#sockets.size; }

  /**
   * Whether a connection from `address` would be shed now: over the connection limit, the
   * limit of connections that have not said who they are, or this address's share. The
   * HTTPS listener asks before it accepts a WebSocket, so that a flood of upgrades is
   * refused with a 503 before it costs a WebSocket.
   */
  wouldShed(address: string): boolean {
    const cfg = this.#ctx.config;
    return this.#sockets.size >= cfg.maxConnections || this.#unidentified >= cfg.maxUnidentified
      || (this.#unauthByAddress.get(address) ?? 0) >= cfg.maxUnauthenticatedPerAddress;
  }

  /** A connection on the SSH listener: TCP tuned for an SSH transport, then the front door. */
  #acceptTcp(socket: Socket): void {
    if (this.wouldShed(socket.remoteAddress ?? 'unknown')) return this.#shed(socket, socket.remoteAddress ?? 'unknown');
    socket.setNoDelay(true);
    coalesceWrites(socket);
    this.acceptStream({ stream: socket, remoteAddress: socket.remoteAddress ?? 'unknown', remotePort: socket.remotePort ?? 0, transport: 'tcp' });
  }

  #shed(stream: Duplex, address: string): void {
    // Debug level: during a flood, one line per shed connection would be a flood of its own.
    this.#ctx.log.debug({ remote: address, connections: this.#sockets.size, unidentified: this.#unidentified }, 'connection shed: over the limit');
    stream.destroy();
  }

  /**
   * Takes one transport stream, whichever listener it came from. Over-limit connections are
   * dropped before a byte is read, so a flood costs little.
   */
  acceptStream(incoming: IncomingStream): void {
    const cfg = this.#ctx.config;
    const { stream: socket, remoteAddress: address, transport } = incoming;
    // Until a connection has said who it is (its identification line) it has no lane; the
    // lanes' own limits apply once it has (see #waitForIdent), so a fleet coming back fills
    // the devices' lane and not the operators'.
    if (this.#stopped || this.wouldShed(address)) return this.#shed(socket, address);
    // ssh2's server reads a connection's address off its transport.
    if (transport !== 'tcp') Object.assign(socket, { remoteAddress: address, remotePort: incoming.remotePort });
    socket.on('error', () => { /* reported through ssh2; a reset must not crash the relay */ });
    const fromAddress = this.#unauthByAddress.get(address) ?? 0;
    this.#unauthByAddress.set(address, fromAddress + 1);
    const state: PendingState = {
      address, transport, principal: null, attempts: 0, authenticated: false, queued: null, refused: null,
      grace: this.#ctx.clock.setTimeout(() => {
        this.#ctx.log.info({ remote: address, transport }, 'login grace time over: connection dropped');
        socket.destroy();
      }, cfg.loginGraceMs),
    };
    this.#states.set(socket, state);
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      if (state.principal === null && state.refused !== null) this.#auditRefusal(state);
      this.#leaveUnauthenticated(state);
      this.#releaseSlot(socket);
    });
    this.#unidentified++;
    this.#waitForIdent(socket, state);
    // ssh2 types injectSocket for net.Socket; it reads and writes any duplex stream.
    this.#ssh.injectSocket(socket as Socket);
  }

  /**
   * Reads the client's identification line as ssh2 receives it and asks for a handshake
   * slot in that line's lane; without one, the socket is paused before the client's key
   * exchange reaches ssh2 (the relay has sent only its own ident and KEXINIT by then) and
   * resumed when a slot frees. A client that sends no line holds no slot: it counts against
   * `maxUnidentified`, the per-address limit and the login grace timer.
   */
  #waitForIdent(socket: Duplex, state: PendingState): void {
    let seen: Buffer | null = null;
    const identified = () => {
      socket.off('data', onData);
      socket.off('close', identified);
      this.#unidentified--;
    };
    const onData = (chunk: Buffer) => {
      seen = seen ? Buffer.concat([seen, chunk]) : chunk;
      const end = seen.indexOf(0x0a);
      if (end < 0 && seen.length < MAX_IDENT_BYTES) return;
      identified();
      const lane = laneOf(seen.subarray(0, end < 0 ? MAX_IDENT_BYTES : end).toString('latin1'));
      const counts = this.#slots.counts()[lane];
      const cfg = this.#ctx.config;
      if (counts.running + counts.waiting >= (lane === 'device' ? cfg.maxUnauthenticated : cfg.maxUnauthenticatedInteractive)) {
        this.#ctx.log.debug({ remote: state.address, lane }, 'connection shed: its lane is full');
        socket.destroy();
        return;
      }
      if (this.#slots.request(socket, lane, state.address)) return;
      socket.pause();
      // A client gives up after its own timeout (the agent's is 15 s); a handshake started
      // after that would be work for nobody, so a connection waits at most this long.
      state.queued = this.#ctx.clock.setTimeout(() => {
        this.#ctx.log.debug({ remote: state.address, lane }, 'connection dropped: waited too long for a handshake slot');
        this.#releaseSlot(socket);
        socket.destroy();
      }, cfg.handshakeQueueWaitMs);
    };
    // Before ssh2's own listener (added by injectSocket), so a queued client's next bytes wait.
    socket.on('data', onData);
    socket.once('close', identified);
  }

  /** Frees `socket`'s handshake slot (or queue place); the next queued connection goes on. */
  #releaseSlot(socket: Duplex): void {
    this.#states.get(socket)?.queued?.cancel();
    const next = this.#slots.release(socket);
    if (!next) return;
    this.#states.get(next)?.queued?.cancel();
    next.resume();
  }

  #leaveUnauthenticated(state: PendingState): void {
    if (state.authenticated) return;
    state.authenticated = true;
    state.grace.cancel();
    const n = (this.#unauthByAddress.get(state.address) ?? 1) - 1;
    if (n <= 0) this.#unauthByAddress.delete(state.address); else this.#unauthByAddress.set(state.address, n);
  }

  #onConnection(conn: Connection, info: { ip: string; port: number; header: { versions: { software: string }; comments?: string } }): void {
    const socket = socketOf(conn);
    const state = socket && this.#states.get(socket);
    if (!state) {
      conn.end();
      return;
    }
    const remote = { address: info.ip, port: info.port };
    conn.on('error', (err: Error & { level?: string }) => {
      this.#ctx.log.debug({ remote: remote.address, err: err.message }, 'connection error');
      // ssh2 ends the connection on a keepalive timeout, but a peer that is gone never
      // answers the FIN and 'close' would wait for TCP to give up: minutes of a ghost link.
      if (err.level === 'client-timeout') socket!.destroy();
    });
    conn.on('authentication', (auth) => this.#authenticate(conn, state, auth));
    conn.once('ready', () => {
      this.#releaseSlot(socket!);
      const p = state.principal!;
      // Anyone may log in to enrol (the token is checked afterwards), so an enrolling
      // connection stays under the per-address limit and the login grace timer.
      if (p.kind !== 'enroll') this.#leaveUnauthenticated(state);
      if (p.kind === 'operator') serveOperator(this.#ctx, conn, { kind: 'ssh', user: p.user, keyFingerprint: p.keyFingerprint, remoteAddress: remote.address }, remote);
      else if (p.kind === 'device') serveDeviceLink(this.#ctx, conn, p.name, remote, { version: agentVersionOf(info.header.versions.software), instance: agentInstanceOf(info.header.comments), transport: state.transport });
      else serveEnrollment(this.#ctx, conn, p.key, remote);
    });
  }

  #authenticate(conn: Connection, state: PendingState, auth: AuthContext): void {
    // Like OpenSSH's MaxAuthTries, only failures count: not the 'none' probe every client
    // starts with, and not a key query that the relay answers with "this key would do".
    const fail = (key: string | null, why: string) => {
      state.refused = { user: auth.username.slice(0, 64), key, why };
      if (++state.attempts >= this.#ctx.config.maxAuthAttempts) {
        this.#ctx.log.info({ remote: state.address, user: auth.username }, 'too many authentication failures');
        state.refused.why += '; then too many authentication failures';
        auth.reject();
        conn.end();
        return;
      }
      auth.reject(['publickey']);
    };
    if (auth.method === 'none') return auth.reject(['publickey']);
    if (auth.method !== 'publickey') return fail(null, `method ${auth.method} is not accepted (public keys only)`);
    const pk = auth as PublicKeyAuthContext;
    const found = this.#principalFor(pk.username, pk.key.algo, pk.key.data, state.transport);
    if ('refused' in found) return fail(found.fingerprint, found.refused);
    if (!pk.signature) return pk.accept(); // The client asks whether this key would do; it still has to sign.
    if (!verifySignature(pk.key.data, pk.blob, pk.signature, pk.hashAlgo)) return fail(found.fingerprint, 'the signature did not verify');
    state.principal = found.principal;
    pk.accept();
  }

  /**
   * Writes the relay.login.refused row of a connection that closed without logging in,
   * within the rate limit: past it, one summary row per window says how many were left out.
   */
  #auditRefusal(state: PendingState): void {
    if (this.#stopped || !this.#refusals.take()) return;
    const r = state.refused!;
    this.#ctx.store.audit({ at: this.#ctx.clock.now(), actor: r.user, action: 'relay.login.refused', target: null, detail: { user: r.user, key: r.key, remote: state.address, why: r.why, attempts: state.attempts } });
  }

  /** Who `username` with this key is, or why the pair is not accepted (in words for the audit log, never for the client). */
  #principalFor(username: string, algo: string, blob: Buffer, transport: LinkTransport): { principal: LoginOf; fingerprint: string } | { refused: string; fingerprint: string | null } {
    // Not parsed here: a malformed blob matches no stored key, and fails signature verification.
    if (algo !== 'ssh-ed25519') return { refused: `only Ed25519 keys are accepted, not ${algo.slice(0, 64)}`, fingerprint: null };
    const key = offeredKey(algo, blob);
    const fingerprint = key.fingerprint;
    const store = this.#ctx.store;
    if (username === ENROLL_LOGIN) return { principal: { kind: 'enroll', key }, fingerprint };
    // The WebSocket path is the agents' way in; operators use the SSH listener (least privilege:
    // a console or API credential never opens an SSH session through it).
    if (transport === 'wss' && username !== AGENT_LOGIN) return { refused: `operator logins come over SSH, not the agent link (${AGENT_LINK_PATH})`, fingerprint };
    if (username === AGENT_LOGIN) {
      const device = store.getDeviceByKey(key.fingerprint);
      if (device === null || !sameKey(blobOf(device.keyLine), key.blob)) return { refused: 'no device is enrolled with this key', fingerprint };
      const hold = mayHoldLink(device);
      return hold.allow ? { principal: { kind: 'device', name: device.name }, fingerprint } : { refused: hold.message, fingerprint };
    }
    const user = store.getUser(username);
    if (!user) return { refused: 'no such user', fingerprint };
    const match = user.keys.find((k) => k.fingerprint === key.fingerprint && sameKey(blobOf(k.line), key.blob));
    if (!match) return { refused: `the key is not one of ${user.name}'s keys`, fingerprint };
    return { principal: { kind: 'operator', user: user.name, keyFingerprint: key.fingerprint }, fingerprint };
  }
}

/** The agent version from an SSH software string (`ferry-agent_0.1.0` → `0.1.0`); anything else as sent, bounded. */
export function agentVersionOf(software: string): string | null {
  if (!software) return null;
  const m = /^ferry-agent_(\d+\.\d+\.\d+[\w.-]*)$/.exec(software);
  return m ? m[1]! : software.slice(0, 64);
}

/** The agent's instance id from the comments of its identification line (`SSH-2.0-ferry-agent_0.1.0 ID`), or null. */
export function agentInstanceOf(comments: string | undefined): string | null {
  const id = comments?.trim();
  return id !== undefined && /^[\w-]{8,64}$/.test(id) ? id : null;
}
