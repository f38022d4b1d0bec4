/** A button that copies a text (a command, a URL) to the clipboard and says so. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** How long "Copied" shows before the label comes back. */
const DONE_MS = 2_000;

/** Copies `text`; where the clipboard API is refused, selects the text of the element `fallbackId` so that Ctrl+C copies it. */
export function CopyButton({ text, label = 'Copy', fallbackId }: { text: string; label?: string; fallbackId?: string }): JSX.Element {
  const [state, setState] = useState<'idle' | 'done' | 'failed'>('idle');
  useEffect(() => {
    if (state === 'idle') return undefined;
    const t = setTimeout(() => setState('idle'), DONE_MS);
    return () => clearTimeout(t);
  }, [state]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState('done');
    } catch {
      const el = fallbackId === undefined ? null : document.getElementById(fallbackId);
      if (el) {
        const range = document.createRange();
        range.selectNodeContents(el);
        const sel = getSelection();
        sel?.removeAllRanges();
        sel?.addRange(range);
      }
      setState('failed');
    }
  };
  const shown = state === 'done' ? 'Copied' : state === 'failed' ? 'Press Ctrl+C' : label;
  return <button type="button" class="copy" onClick={copy} aria-live="polite">{shown}</button>;
}
