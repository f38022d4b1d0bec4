/** What a list shows when it has nothing: a short title and, below it, what to do. */
import type { ComponentChildren, JSX } from 'preact';

/** The empty state: `title`, then the children (a hint, a link, a command to run). */
export function Empty({ title, children }: { title: string; children?: ComponentChildren }): JSX.Element {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children !== undefined && <div class="empty-hint">{children}</div>}
    </div>
  );
}
