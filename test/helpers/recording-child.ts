// A process that records output for ever, for the crash test (recording-crash.test.ts): it
// writes numbered lines to the recording given as argv[2] and prints the event count on
// disk after every flush, until it is killed.
import { systemClock } from '../../src/common/clock.ts';
import { Recorder } from '../../src/relay/recording.ts';

const file = process.argv[2]!;
const recorder = await Recorder.open({
  file, width: 80, height: 24, clock: systemClock, flushIntervalMs: 50,
  onFlush: (w) => process.stdout.write(`${JSON.stringify(w)}\n`),
});
let i = 0;
// Several events per tick, with multi-byte text, so that a kill lands mid-stream.
setInterval(() => {
  for (let k = 0; k < 20; k++) recorder.output(Buffer.from(`line ${i++} é😀\r\n`));
}, 2);
