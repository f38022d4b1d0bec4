/** The console's shared components, for every page. */
export { Bytes, formatBytes } from './bytes.tsx';
export { CopyButton } from './copy-button.tsx';
export { Empty } from './empty.tsx';
export { ErrorBanner } from './error-banner.tsx';
export { Pager } from './pager.tsx';
export { Labels, OnlineBadge, StatusBadge } from './status.tsx';
export { Table, type Column } from './table.tsx';
export { formatDuration, relativeTime, Time } from './time.tsx';
