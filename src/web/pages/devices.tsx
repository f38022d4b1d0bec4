/** The devices page (placeholder in this commit). */
import type { JSX } from 'preact';

/** Draws the page. */
export default function DevicesPage(): JSX.Element {
  return <h1>Devices</h1>;
}
