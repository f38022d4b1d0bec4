/** What a path that names no page shows. */
import type { JSX } from 'preact';
import { Empty } from '../components/index.ts';
import { Link } from '../router.tsx';

/** Draws the page. */
export default function NotFoundPage(): JSX.Element {
  return <><h1>Not found</h1><Empty title="No page of the console has this address."><Link href="/">Go to the devices</Link></Empty></>;
}
