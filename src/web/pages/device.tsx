/** A device's page (placeholder in this commit). */
import type { JSX } from 'preact';

/** Draws the page of device `name`. */
export default function DevicePage({ name }: { name: string }): JSX.Element {
  return <h1>{name}</h1>;
}
