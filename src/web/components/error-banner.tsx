/** A failure, said plainly: the relay's message (which says what to do) and its code, with an optional retry. */
import type { JSX } from 'preact';
import { ApiError, errorMessage } from '../api.ts';

/** Shows `error` (anything thrown; an ApiError shows the relay's code), or nothing when it is null. */
export function ErrorBanner({ error, onRetry, title }: { error: unknown; onRetry?: () => void; title?: string }): JSX.Element | null {
  if (error === null || error === undefined) return null;
  const code = error instanceof ApiError ? error.code : null;
  return (
    <div class="banner banner-error" role="alert">
      <p>
        {title !== undefined && <strong>{title}: </strong>}
        {errorMessage(error)}
        {code !== null && <> <code class="code">{code}</code></>}
      </p>
      {onRetry && <button type="button" onClick={onRetry}>Try again</button>}
    </div>
  );
}
