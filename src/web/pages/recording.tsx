/**
 * One recording, played back with asciinema-player: play and pause, seek by steps or to
 * either end (the player's bar seeks too), speed, and a download link for the .cast file.
 * The page also hashes the file it plays and shows whether that matches the sha256 the
 * relay wrote when the recording ended, so what is watched is what the audit log vouches for.
 */
import '../components/forms.css';
import 'asciinema-player/dist/bundle/asciinema-player.css';
import * as AsciinemaPlayer from 'asciinema-player';
import type { JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { parseCast, type CastFile } from '../../protocol/asciicast.ts';
import { ApiError, get } from '../api.ts';
import type { RecordingView } from '../api-types.ts';
import { Bytes, ErrorBanner, formatDuration, Time } from '../components/index.ts';
import { Link } from '../router.tsx';

/** The playback speeds offered. */
const SPEEDS = [0.5, 1, 2, 4, 8] as const;

/** How far one step back or forward seeks, in seconds. */
const SEEK_STEP_S = 5;

/** Pauses longer than this many seconds play as this long, so that a session left idle is still watchable. */
const IDLE_LIMIT_S = 2;

/** The file as fetched: its text up to the last whole line, what parsing it found, and its sha256 (null where the browser cannot hash). */
interface Cast { text: string; file: CastFile; bytes: number; sha256: string | null }

async function fetchCast(id: string): Promise<Cast> {
  const res = await fetch(castUrl(id), { credentials: 'same-origin' });
  if (!res.ok) {
    const body = await res.json().catch(() => null) as { error?: { code: string; message: string } } | null;
    throw new ApiError(res.status, body?.error?.code ?? 'FERRY_INTERNAL', body?.error?.message ?? `the relay answered ${res.status} for this recording`);
  }
  const raw = await res.arrayBuffer();
  const full = new TextDecoder('utf-8').decode(raw);
  // A recording cut by a relay crash ends in a torn line; the player gets the whole lines before it.
  const text = full.slice(0, full.lastIndexOf('\n') + 1);
  // crypto.subtle exists only in secure contexts (HTTPS, or localhost): elsewhere the check is left out.
  const digest = globalThis.crypto?.subtle ? await crypto.subtle.digest('SHA-256', raw) : null;
  const sha256 = digest ? [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('') : null;
  return { text, file: parseCast(full), bytes: raw.byteLength, sha256 };
}

function castUrl(id: string, download = false): string {
  return `/api/v1/recordings/${encodeURIComponent(id)}/cast${download ? '?download=1' : ''}`;
}

/** The recording page (`/recordings/:id`). */
export default function RecordingPage({ id }: { id: string }): JSX.Element {
  const [cast, setCast] = useState<Cast | null>(null);
  const [row, setRow] = useState<RecordingView | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [speed, setSpeed] = useState(1);
  const [playing, setPlayingState] = useState(false);
  // The player has no getter for whether it plays; its events keep this (read when it is made again).
  const playingRef = useRef(false);
  const setPlaying = (v: boolean) => { playingRef.current = v; setPlayingState(v); };
  const holder = useRef<HTMLDivElement>(null);
  const player = useRef<AsciinemaPlayer.Player | null>(null);
  // Where to start when the player is made again (a speed change keeps the place).
  const resumeAt = useRef<{ at: number; play: boolean }>({ at: 0, play: false });

  useEffect(() => {
    setCast(null);
    setError(null);
    fetchCast(id).then(setCast, setError);
    get<RecordingView>(`/recordings/${encodeURIComponent(id)}`).then(setRow, () => setRow(null));
  }, [id]);

  useEffect(() => {
    if (!cast || !holder.current) return undefined;
    const { at, play } = resumeAt.current;
    const p = AsciinemaPlayer.create({ data: cast.text }, holder.current, {
      speed, startAt: at, autoPlay: play, preload: true, fit: 'width', idleTimeLimit: IDLE_LIMIT_S, terminalFontSize: 'small',
      // Before it plays, the player shows the screen as the session left it, not a blank one
      // (a poster at a time shows the events before it: one second past the last).
      ...(at === 0 && !play ? { poster: `npt:${(cast.file.events.at(-1)?.[0] ?? 0) + 1}` } : {}),
      cols: cast.file.header.width, rows: cast.file.header.height,
    });
    p.addEventListener('play', () => setPlaying(true));
    p.addEventListener('playing', () => setPlaying(true));
    p.addEventListener('pause', () => setPlaying(false));
    p.addEventListener('ended', () => setPlaying(false));
    player.current = p;
    return () => {
      resumeAt.current = { at: p.getCurrentTime(), play: playingRef.current };
      p.dispose();
      player.current = null;
    };
  }, [cast, speed]);

  const seekBy = (s: number) => {
    const p = player.current;
    if (p) void p.seek(Math.max(0, p.getCurrentTime() + s));
  };
  const toggle = () => {
    const p = player.current;
    if (p) void (playing ? p.pause() : p.play());
  };

  const header = cast?.file.header;
  const last = cast?.file.events.at(-1);
  const matchesRow = cast?.sha256 && row?.sha256 ? cast.sha256 === row.sha256 : null;
  return (
    <section aria-labelledby="recording-title">
      <p class="crumbs"><Link href="/recordings">Recordings</Link> /</p>
      <h1 id="recording-title">{header?.title ?? `Recording ${id}`}</h1>
      <ErrorBanner error={error} />
      {cast && (
        <dl class="kv">
          <div><dt>Started</dt><dd><Time at={new Date(header!.timestamp * 1000).toISOString()} /></dd></div>
          <div><dt>Length</dt><dd>{formatDuration((last?.[0] ?? 0) * 1000)}</dd></div>
          <div><dt>Terminal</dt><dd>{header!.width}×{header!.height}{header!.env?.TERM ? `, ${header!.env.TERM}` : ''}</dd></div>
          <div><dt>Size</dt><dd><Bytes n={cast.bytes} /></dd></div>
          <div>
            <dt>sha256</dt>
            <dd>
              <code class="hash">{cast.sha256 ?? 'not computed (needs HTTPS)'}</code>
              {matchesRow === true && <span class="badge badge-online" data-testid="hash-check">matches the audited sha256</span>}
              {matchesRow === false && <span class="badge badge-revoked" data-testid="hash-check">differs from the audited sha256 {row!.sha256}</span>}
              {row && row.sha256 === null && <span class="badge">still being recorded</span>}
            </dd>
          </div>
          {cast.file.tornTail && <div><dt>Note</dt><dd>The relay stopped while this was being written: it plays up to the last flush.</dd></div>}
        </dl>
      )}
      {cast && (
        <div class="toolbar" role="toolbar" aria-label="Playback">
          <button type="button" onClick={() => void player.current?.seek(0)}>Start</button>
          <button type="button" onClick={() => seekBy(-SEEK_STEP_S)}>−{SEEK_STEP_S} s</button>
          <button type="button" class="primary" onClick={toggle}>{playing ? 'Pause' : 'Play'}</button>
          <button type="button" onClick={() => seekBy(SEEK_STEP_S)}>+{SEEK_STEP_S} s</button>
          <button type="button" onClick={() => void player.current?.seek('100%')}>End</button>
          <label>Speed{' '}
            <select value={String(speed)} onChange={(e) => setSpeed(Number((e.currentTarget as HTMLSelectElement).value))}>
              {SPEEDS.map((s) => <option key={s} value={String(s)}>{s}×</option>)}
            </select>
          </label>
          <a class="button" href={castUrl(id, true)} download={`${id}.cast`}>Download .cast</a>
        </div>
      )}
      <div class="player" ref={holder} />
    </section>
  );
}

