/** Checks on the JSON log lines that ferry's processes write to stderr. */

/**
 * The keys that occur more than once at the top level of one JSON object line. JSON.parse
 * keeps the last of them silently, so this scans the text itself.
 */
export function duplicateKeys(line: string): string[] {
  const seen = new Set<string>();
  const dups: string[] = [];
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      const key = JSON.parse(line.slice(i, j + 1)) as string;
      // A string at depth 1 followed by a colon is one of the line's own keys.
      if (depth === 1 && /^\s*:/.test(line.slice(j + 1))) {
        if (seen.has(key)) dups.push(key);
        seen.add(key);
      }
      i = j;
    }
  }
  return dups;
}
