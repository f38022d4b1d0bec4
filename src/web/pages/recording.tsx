/** The recording page: a placeholder until its page lands (issue 11, pages of part D). */
import type { JSX } from 'preact';
import { Empty } from '../components/index.ts';

/** Draws the page for recording `id`. */
export default function RecordingPage({ id }: { id: string }): JSX.Element {
  return <><h1>Recording</h1><Empty title="This page is not built yet.">Over SSH: <code>ssh -p 2222 USER@RELAY recording cat {id}</code>.</Empty></>;
}
