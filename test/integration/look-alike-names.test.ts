// Issue #9: a host name with a Unicode look-alike (KELVIN SIGN, which toLowerCase turns into
// 'k') reaches no device through the relay's direct-tcpip lookup.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { startFixture } from '../helpers/fixture.ts';

/** Opens a direct-tcpip channel to `host:22` as the admin; resolves 'open' or the refusal. */
function reach(port: number, keyPath: string, host: string): Promise<string> {
  const client = new ssh2.Client();
  return new Promise((resolve) => {
    client.once('error', (err) => resolve(`error: ${err.message}`));
    client.once('ready', () => {
      client.forwardOut('127.0.0.1', 0, host, 22, (err, stream) => {
        if (err) resolve(`refused: ${err.message}`);
        else { stream.destroy(); resolve('open'); }
        client.end();
      });
    });
    client.connect({ host: '127.0.0.1', port, username: 'admin', privateKey: readFileSync(keyPath, 'utf8'), readyTimeout: 10_000 });
  });
}

test("'\\u212Aiosk' does not reach the device 'kiosk'; 'KIOSK' and 'kiosk.ferry' do", { timeout: 60_000 }, async (t) => {
  const f = await startFixture(t);
  await f.device('kiosk');
  const port = f.relay.sshAddress.port;
  assert.equal(await reach(port, f.adminKey.path, 'kiosk'), 'open');
  assert.equal(await reach(port, f.adminKey.path, 'KIOSK.ferry'), 'open', 'ASCII upper case still folds, as OpenSSH does');
  assert.equal(await reach(port, f.adminKey.path, '\u212Aiosk'), "refused: (SSH) Channel open failure: no device named '\u212Aiosk' is enrolled; 'devices' lists the names");
  assert.equal(await reach(port, f.adminKey.path, '\u212AIOSK.ferry'), "refused: (SSH) Channel open failure: no device named '\u212Aiosk' is enrolled; 'devices' lists the names");
});
