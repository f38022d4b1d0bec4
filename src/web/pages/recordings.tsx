/** The Recordings page: a placeholder until its page lands (issue 11, pages of part D). */
import type { JSX } from 'preact';
import { Empty } from '../components/index.ts';

/** Draws the page. */
export default function RecordingsPage(): JSX.Element {
  return <><h1>Recordings</h1><Empty title="This page is not built yet.">Over SSH: <code>ssh -p 2222 USER@RELAY help</code> lists the commands.</Empty></>;
}
