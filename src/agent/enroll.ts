/** Enrollment: trade a token for a device identity bound to this agent's key, over one SSH exec. */
import type { Client } from 'ssh2';
import { FerryError } from '../common/errors.ts';
import { enrollCommand, type EnrollRequest, type EnrollResponse } from '../protocol/enrollment.ts';

/** Longest answer the relay may send to an enrollment request. */
const MAX_ANSWER_BYTES = 16_384;

/** Sends the request on a ready client (logged in as the enrollment user) and returns the relay's answer. */
export function requestEnrollment(client: Client, req: EnrollRequest): Promise<Extract<EnrollResponse, { ok: true }>> {
  return new Promise((resolve, reject) => {
    client.exec(enrollCommand(req), (err, stream) => {
      if (err) return reject(new FerryError('FERRY_CONNECT_FAILED', `the relay refused the enrollment request: ${err.message}`));
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (d: Buffer) => {
        size += d.length;
        if (size <= MAX_ANSWER_BYTES) chunks.push(d);
      });
      stream.stderr.resume();
      stream.on('close', () => {
        let answer: EnrollResponse;
        try {
          answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as EnrollResponse;
        } catch {
          return reject(new FerryError('FERRY_CONNECT_FAILED', 'the relay gave no readable answer to the enrollment request'));
        }
        if (answer.ok) resolve(answer);
        else reject(new FerryError(answer.code === 'FERRY_CONFLICT' ? 'FERRY_CONFLICT' : 'FERRY_TOKEN_REFUSED', `enrollment refused: ${answer.message}`));
      });
    });
  });
}
