/**
 * Every limit and timeout ferry uses, with its default, in one visible block.
 * Components take these as defaults in their own config; the CLI may override them.
 */
export const LIMITS = Object.freeze({
  /** A connection that has not authenticated by then is dropped (OpenSSH's LoginGraceTime). */
  loginGraceMs: 20_000,
  /** Authentication attempts per connection before it is dropped (OpenSSH's MaxAuthTries). */
  maxAuthAttempts: 6,
  /** Connections the relay holds at once, authenticated or not. */
  maxConnections: 150_000,
  /** Connections that have not sent their SSH identification line yet (silent ones included). */
  maxUnidentified: 16_384,
  /** Agent connections that have not authenticated yet (handshaking or queued for a handshake). */
  maxUnauthenticated: 8_192,
  /** The same for operators and other non-agent clients, in a lane of their own. */
  maxUnauthenticatedInteractive: 512,
  /** Connections that have not authenticated yet, from one source address. */
  maxUnauthenticatedPerAddress: 256,
  /** SSH handshakes the relay runs at once for devices; more wait their turn (see relay/admission.ts). */
  maxHandshakes: 256,
  /** The same for operators and other non-agent clients, in their own lane. */
  maxInteractiveHandshakes: 32,
  /**
   * Share of the device lane's handshake slots (percent) one source address may hold; the
   * rest of its connections wait. Large, because a fleet behind one NAT address is normal.
   */
  handshakeSharePerAddress: 50,
  /** The same in the operators' lane: small, so that one address cannot lock operators out. */
  interactiveHandshakeSharePerAddress: 10,
  /** Longest wait for a handshake slot; less than the agent's connect timeout, so no handshake is run for a client that gave up. */
  handshakeQueueWaitMs: 10_000,
  /**
   * Clone detection (relay/clone-detector.ts): two machines with one device identity (a
   * copied state dir) that replace each other this many times over within this window are
   * one clone episode; the episode ends after a window with no contention.
   */
  cloneWindowMs: 60_000,
  cloneComebacks: 2,
  /** During a clone episode, a link from the other machine is refused for this long after a replace, doubling each time up to the ceiling. */
  cloneHoldOffBaseMs: 10_000,
  cloneHoldOffMaxMs: 300_000,
  /** Relay to device: how long the agent has to accept or refuse a forwarded channel. */
  channelOpenTimeoutMs: 10_000,
  /** Agent to its SSH target: how long a TCP connect may take. */
  targetConnectTimeoutMs: 5_000,
  /** Keepalive on both ends of the link: interval and missed replies before the link is dead. */
  keepaliveIntervalMs: 20_000,
  keepaliveCountMax: 3,
  /** Agent reconnect backoff: first cap, ceiling, and how long a link must stay up to reset it. */
  backoffBaseMs: 500,
  backoffMaxMs: 60_000,
  backoffResetAfterMs: 30_000,
  /**
   * Agent: after the relay refuses the device's key (revoked or removed), retry this often
   * (jittered over its upper half) instead of every backoff interval: it will not pass by itself.
   */
  revokedRetryMs: 6 * 60 * 60 * 1000,
  /** Agent: after such a link drops, retry within this window (jittered) for this long, then back off. */
  fastRetryMaxMs: 1_000,
  fastRetryForMs: 60_000,
  /**
   * Agent: a link from which nothing has come for the keepalive interval plus this long is
   * given up (the relay answers every keepalive at once, so the path is gone) and redialled.
   */
  linkStallGraceMs: 5_000,
  /** Agent: while a TCP connect to the relay gets no answer, start another this often. */
  relayRedialMs: 1_000,
  /** Agent: how long one connection attempt (TCP + SSH handshake + auth) may take. */
  connectTimeoutMs: 15_000,
  /** Agent: reports (device-report.ts) held while no link is up; beyond this the oldest are dropped and counted. */
  maxQueuedReports: 1_000,
  /**
   * Bytes a socket may hold queued for writing before a stream piped into it pauses (Node's
   * default is 16 KiB, less than one 32 KiB SSH data packet, which made every packet its own write).
   */
  socketBufferBytes: 256 * 1024,
  /** Live sessions (reaches through the relay) one user may hold at once, over all their connections. */
  maxSessionsPerUser: 32,
  /** Live sessions to one device at once, from everyone. */
  maxSessionsPerDevice: 16,
  /** A session that moves no byte either way for this long is ended; 0: never. */
  sessionIdleTimeoutMs: 0,
  /**
   * Refused logins written to the audit log per window; past that, one summary row per
   * window says how many were left out, so a flood of bad logins cannot flood the log.
   */
  loginRefusalAuditPerWindow: 30,
  /** Device reports recorded per device per window, then one summary row (a device cannot flood the log either). */
  deviceReportAuditPerWindow: 600,
  /** The window of both rate limits above. */
  auditRateWindowMs: 60_000,
  /** Operator command over SSH exec: longest command line accepted. */
  maxCommandBytes: 16_384,
  /** How often the relay checks the store for changes made by another process (revocations). */
  storeWatchIntervalMs: 250,
  /** How often the relay notes that it is running, so that after a crash "last seen" is close to the truth. */
  heartbeatIntervalMs: 15_000,
  /** Enrollment tokens: default and longest lifetime. */
  tokenDefaultTtlMs: 60 * 60 * 1000,
  tokenMaxTtlMs: 30 * 24 * 60 * 60 * 1000,
  /** The most devices one enrollment token may enrol. */
  tokenMaxUses: 100_000,
  /** `audit` lists: the default and the largest number of rows one call returns. */
  auditDefaultLimit: 100,
  auditMaxLimit: 10_000,
  /**
   * Recordings: buffered events are written this often, so a crash loses at most this much;
   * the file is fsynced at close and this often, so a power cut loses at most that much.
   */
  recordingFlushIntervalMs: 250,
  recordingFsyncIntervalMs: 5_000,
  /**
   * Recordings: event bytes held in memory, not yet on disk, past which the recorder asks
   * its source to pause (a terminal producing output faster than the disk takes it).
   */
  recordingMaxBufferedBytes: 1024 * 1024,
  /** Recordings: kept this long after they end; 0 keeps them forever (--recording-retention). */
  recordingRetentionMs: 0,
  /** Recordings: how often the relay looks for recordings past their retention. */
  recordingRetentionSweepMs: 60 * 60 * 1000,
  /** `recordings` lists: the most rows one call returns. */
  recordingsListLimit: 1_000,
  /** Labels per device, and the longest key and value. */
  maxLabels: 32,
  maxLabelKeyLength: 63,
  maxLabelValueLength: 255,
  /**
   * The relay's HTTPS listener (console, API, /healthz, /metrics). A request body larger than
   * this is refused with 413 before it is read: the API takes small JSON documents only.
   */
  httpBodyLimitBytes: 64 * 1024,
  /** A client that has not sent its request headers by then is dropped (slowloris). */
  httpHeadersTimeoutMs: 10_000,
  /** A whole request, body included, must arrive within this. */
  httpRequestTimeoutMs: 30_000,
  /**
   * How often Node checks the two timeouts above. Its default, 30 s, would let a slow client
   * hold a connection up to 30 s past its deadline.
   */
  httpTimeoutCheckIntervalMs: 1_000,
  /** A kept-alive connection with no request for this long is closed. */
  httpIdleTimeoutMs: 5_000,
  /**
   * HTTP connections held at once besides the agents' wss links (the listener's bound is this
   * plus maxConnections, which bounds the links); more are refused at accept.
   */
  httpMaxConnections: 10_000,
  /**
   * TLS handshakes the HTTPS listener runs at once, and from one source address (an IPv6 /64);
   * past the address's share a connection is reset at accept; past the overall bound the
   * oldest handshake older than the eviction age is dropped for it, or it is reset
   * (http/tls-admission.ts). A handshake not done within the timeout is dropped (Node's own
   * default is 120 s).
   */
  httpMaxTlsHandshakes: 128,
  httpTlsHandshakesPerAddress: 8,
  httpTlsHandshakeEvictAfterMs: 2_000,
  httpTlsHandshakeTimeoutMs: 10_000,
  /**
   * The agent link over a WebSocket (wss://RELAY/v1/agent), both ends: each pings this often
   * and terminates a socket that has not answered the previous ping, so a link whose proxy
   * dropped it silently ends within two intervals. Below the 60 s idle timeout that common
   * proxies and load balancers apply, so they see traffic on an idle link.
   */
  linkWsPingIntervalMs: 20_000,
  /** The WebSocket link: the largest message either way (writes are batched up to it; an SSH packet is at most 35 000 bytes). */
  linkWsMaxMessageBytes: 256 * 1024,
  /**
   * The agent with several relay endpoints: the next one in the list is tried when the one
   * before it failed, or after this long without an answer (both then race, and the first
   * link up wins), so a device whose TCP port is silently dropped falls back to wss quickly.
   */
  endpointFallbackMs: 3_000,
  /**
   * A stopping relay waits this long at most for the browser terminals' recordings to write
   * their last rows; a recording stuck behind a session that cannot close must not hold the
   * stop for ever.
   */
  shutdownRecordingWaitMs: 3_000,
  /** Seconds a relay over its connection limits tells an agent's wss upgrade to wait (Retry-After of its 503). */
  linkWsRetryAfterSeconds: 5,
  /** Lifetime of the self-signed HTTPS certificate the relay makes on first start (825 days: the most some browsers accept). */
  selfSignedCertDays: 825,
  /** How long making the self-signed certificate with openssl may take. */
  opensslTimeoutMs: 30_000,
  /**
   * Browser terminal frames (terminal-frames.ts): the longest frame either way, header
   * included. Output is cut into frames of at most this much, so one frame is never more
   * than a WebSocket message the relay accepts.
   */
  maxTerminalFrameBytes: 64 * 1024,
  /** Browser terminal: the largest terminal size a resize may ask for, in columns and rows. */
  maxTerminalCols: 1_000,
  maxTerminalRows: 1_000,
  /** Relay to device, for a console session: how long the SSH handshake and login on the link may take. */
  consoleHandshakeTimeoutMs: 10_000,
  /**
   * Browser terminal: output bytes the relay keeps that the browser has not acked yet. Past
   * this the relay stops reading the device's output, so the shell blocks (back-pressure);
   * nothing is dropped and the relay's memory per terminal stays bounded.
   */
  consoleUnackedBytes: 1024 * 1024,
  /**
   * Browser terminal: keystrokes (a paste) that may wait on the relay for the device's link
   * to take them; a terminal that sends more is refused with a message, and its session
   * stays for a resume.
   */
  consoleInputQueueBytes: 1024 * 1024,
  /** Browser terminal: the browser acks output at least every this many bytes (well under the cap above, so output never stalls on a healthy browser). */
  consoleAckEveryBytes: 64 * 1024,
  /**
   * Browser terminal: how long the relay keeps a console session whose WebSocket went away
   * without a close frame (a reload, a Wi-Fi switch, a laptop asleep), for the same user to
   * resume it (--console-resume-window).
   */
  consoleResumeWindowMs: 5 * 60 * 1000,
  /**
   * Browser terminal: the relay pings its WebSocket this often; one that has not answered
   * the previous ping by the next is dead (its peer vanished) and is treated as a detach.
   */
  consolePingIntervalMs: 20_000,
  /**
   * Browser terminal: the most output per second the relay reads from one terminal's device
   * (in slices of 100 ms). A `yes` otherwise takes as much CPU on the relay, the link and the
   * device as they have, and slows every other session; a person reads far less, and
   * xterm.js draws little more.
   */
  consoleOutputBytesPerSecond: 2 * 1024 * 1024,
  /**
   * Console sign-in (relay/http/web-auth.ts). A one-time sign-in link (`login`) works once,
   * within this long: enough to paste it into a browser, short enough that one left in a
   * terminal's scrollback or a chat is soon worth nothing.
   */
  loginLinkTtlMs: 2 * 60 * 1000,
  /** Used and expired sign-in links are kept this long after they expire, so that a late try is told "used" or "expired", not "unknown". */
  loginLinkKeepMs: 24 * 60 * 60 * 1000,
  /** A console session (its cookie) lasts this long from sign-in (--console-session-ttl). */
  consoleSessionTtlMs: 12 * 60 * 60 * 1000,
  /** The longest --console-session-ttl: a stolen cookie must not be good for longer than a working week. */
  consoleSessionMaxTtlMs: 7 * 24 * 60 * 60 * 1000,
  /** How often the relay ends console sessions past their expiry (and writes their web.logout rows). */
  consoleSessionSweepMs: 60 * 1000,
  /** The longest sign-in token a POST /api/v1/session reads; a real one is 43 characters. */
  loginTokenMaxChars: 128,
  /** Refused sign-ins audited per window before the rest are summed up in one row. */
  webLoginRefusalAuditPerWindow: 30,
  /** Live event streams (GET /api/v1/events) one user may hold at once; one more ends the oldest. */
  eventStreamsPerUser: 8,
  /** An event stream whose reader has not taken this much yet is dropped (the page reconnects and reloads). */
  eventStreamMaxBufferedBytes: 256 * 1024,
  /** An event stream sends a comment this often, so that proxies and the browser see it alive. */
  eventStreamPingMs: 25_000,
  /** HTTP API lists (devices): the page size when none is asked for, and the largest one. */
  apiDefaultPageSize: 50,
  apiMaxPageSize: 200,
});

/** Ports an operator may reach on a device through the relay: the device's SSH target. */
export const DEVICE_SSH_PORT = 22;
