/** Lists and label sets typed into one text field: items separated by commas or new lines, or by new lines only. */

/** The lines of `text`, trimmed, empty ones left out: for items that hold commas of their own (device selectors). */
export function lineItems(text: string): string[] {
  return text.split('\n').map((s) => s.trim()).filter((s) => s !== '');
}

/** The items of `text`, trimmed, empty ones left out. */
export function listItems(text: string): string[] {
  return text.split(/[,\n]/).map((s) => s.trim()).filter((s) => s !== '');
}

/**
 * Labels typed as `key=value` items. Items without `=` are returned as problems rather than
 * guessed at, so the form can say which one is wrong.
 */
export function labelItems(text: string): { labels: Record<string, string>; problems: string[] } {
  const labels: Record<string, string> = {};
  const problems: string[] = [];
  for (const item of listItems(text)) {
    const eq = item.indexOf('=');
    if (eq <= 0) problems.push(`label '${item}' is not key=value`);
    else labels[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return { labels, problems };
}
