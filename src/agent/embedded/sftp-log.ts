/**
 * Reads what OpenSSH's sftp-server logs to stderr when run with `-e -l INFO`, and turns its
 * open and close lines into file events. Pure: fed text, it calls back with events.
 *
 *   open "/home/pi/a.txt" flags WRITE,CREATE,TRUNCATE mode 0644
 *   close "/home/pi/a.txt" bytes read 0 written 6
 */

/** One file read or written in an SFTP session (scp from OpenSSH 9 on is SFTP too). */
export interface FileEvent { path: string; op: 'read' | 'write'; bytes: number }

/** Longest stderr line kept while waiting for its end; sftp-server's own lines are far shorter. */
const MAX_LINE = 8 * 1024;

const OPEN = /^open "(.*)" flags (\S+) mode \d+$/;
const CLOSE = /^close "(.*)" bytes read (\d+) written (\d+)$/;

/**
 * A line reader for sftp-server's stderr: `push` each chunk; `onFile` gets one event for each
 * file closed, a write when it wrote anything or was opened for writing, a read otherwise;
 * `onOther` every other line (its other log lines, and errors, which no longer reach the client).
 */
export function sftpLogReader(onFile: (e: FileEvent) => void, onOther: (line: string) => void = () => {}): { push(chunk: Buffer): void } {
  let buffered = '';
  // Opened for writing, by path: a file opened to write and closed with 0 bytes (an empty
  // upload) is still a write.
  const writing = new Map<string, boolean>();
  const line = (text: string) => {
    const open = OPEN.exec(text);
    if (open) {
      writing.set(open[1]!, open[2]!.split(',').includes('WRITE'));
      return;
    }
    const close = CLOSE.exec(text);
    if (!close) return onOther(text);
    const [path, read, written] = [close[1]!, Number(close[2]), Number(close[3])];
    const wrote = written > 0 || (read === 0 && writing.get(path) === true);
    writing.delete(path);
    onFile({ path, op: wrote ? 'write' : 'read', bytes: wrote ? written : read });
  };
  return {
    push(chunk) {
      buffered += chunk.toString('utf8');
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        line(buffered.slice(0, nl).replace(/\r$/, ''));
        buffered = buffered.slice(nl + 1);
      }
      if (buffered.length > MAX_LINE) buffered = '';
    },
  };
}
