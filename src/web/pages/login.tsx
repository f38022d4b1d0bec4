/**
 * Sign-in: `ssh relay login` prints PUBLIC_URL/login#TOKEN. The token is in the fragment, which
 * no server, proxy or Referer sees; this page reads it, takes it out of the address bar and the
 * history at once, and spends it with POST /api/v1/session.
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, errorMessage, setCsrf } from '../api.ts';
import type { Me } from '../api-types.ts';

type State = { kind: 'signing-in' } | { kind: 'no-token' } | { kind: 'failed'; error: unknown } | { kind: 'signed-in-as'; user: string };

/** Reads the token once: a re-render must not try to spend it twice. */
const tokenAtLoad = location.pathname === '/login' ? fragmentToken(location.hash) : '';

/** The token in a `#TOKEN` fragment; a fragment that is not valid percent-encoding is spent as it is (the relay refuses it with a message). */
function fragmentToken(hash: string): string {
  const raw = hash.replace(/^#/, '');
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Draws the sign-in page; `onSignedIn` gets the /me answer of the new session. */
export default function LoginPage({ onSignedIn }: { onSignedIn(me: Me): void }): JSX.Element {
  const ended = new URLSearchParams(location.search).has('ended');
  const [state, setState] = useState<State>(tokenAtLoad === '' ? { kind: 'no-token' } : { kind: 'signing-in' });
  useEffect(() => {
    if (tokenAtLoad === '') return;
    // Out of the address bar and the history before anything else: a link is single use anyway,
    // but it should not sit where a shoulder or a shared screen sees it.
    history.replaceState(null, '', '/login');
    // A browser that is signed in already is asked first: a link someone else sent would
    // otherwise sign it in as them, silently (and what is typed next would go to their devices).
    api<Me>('GET', '/me').then((me) => setState({ kind: 'signed-in-as', user: me.user }), spend);
  }, []);

  function spend(): void {
    setState({ kind: 'signing-in' });
    api<Me>('POST', '/session', { token: tokenAtLoad }).then(
      (me) => { setCsrf(me.csrf); onSignedIn(me); },
      (error: unknown) => setState({ kind: 'failed', error }),
    );
  }

  return (
    <main class="page login" id="main">
      <div class="login-card">
        <h1>Sign in to the ferry console</h1>
        {state.kind === 'signing-in' && <p role="status">Signing in…</p>}
        {state.kind === 'signed-in-as' && (
          <div class="banner banner-info" role="status">
            <p>This browser is signed in as <strong>{state.user}</strong>. The link signs it in as the user it was made for, which may be someone else.</p>
            <span class="row">
              <button type="button" class="primary" onClick={spend}>Use the link</button>
              <button type="button" onClick={() => { location.assign('/'); }}>Stay {state.user}</button>
            </span>
          </div>
        )}
        {state.kind === 'failed' && <LinkRefused error={state.error} />}
        {state.kind === 'no-token' && ended && <div class="banner banner-info" role="status"><p>Your console session ended. Sign in again with a new link.</p></div>}
        {state.kind !== 'signing-in' && <HowToSignIn />}
      </div>
    </main>
  );
}

function LinkRefused({ error }: { error: unknown }): JSX.Element {
  // A used, expired or unknown link all answer 401: the relay does not say which, so that a
  // guesser learns nothing; its message says what to do.
  const refused = error instanceof ApiError && (error.status === 401 || error.status === 400 || error.status === 403);
  return (
    <div class="banner banner-error" role="alert">
      <p><strong>{refused ? 'This sign-in link does not work any more.' : 'Signing in failed.'}</strong></p>
      <p>{sentence(errorMessage(error))}</p>
    </div>
  );
}

/** The relay's message as a sentence: a capital first, a full stop last. */
function sentence(text: string): string {
  const t = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

function HowToSignIn(): JSX.Element {
  return (
    <>
      <p>The console has no passwords. Ask the relay for a one-time link, with the SSH key you use for the relay:</p>
      <pre class="command"><code>ssh -p 2222 YOU@RELAY login</code></pre>
      <p>Open the link it prints in this browser within 2 minutes. It signs you in once.</p>
    </>
  );
}
