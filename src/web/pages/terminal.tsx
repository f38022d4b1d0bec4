/** The terminal page (placeholder in this commit). */
import type { JSX } from 'preact';

/** Draws the terminal of device `name`. */
export default function TerminalPage({ name }: { name: string }): JSX.Element {
  return <h1>Terminal · {name}</h1>;
}
