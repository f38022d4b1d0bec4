// Covers src/relay/token-redemption.ts: every rule of trading a token for a device, on a table of cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redemptionDecision, type RedemptionFacts } from '../../src/relay/token-redemption.ts';

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const TOKEN = { id: 't1', createdBy: 'admin', createdAt: NOW - 1000, expiresAt: NOW + 60_000, usesLeft: 1, name: null, labels: {}, approve: false, revokedAt: null, secretMatches: true };

function facts(o: Partial<Omit<RedemptionFacts, 'token'>> & { token?: Partial<NonNullable<RedemptionFacts['token']>> | null; taken?: string[] } = {}): RedemptionFacts {
  const { token, taken = [], ...rest } = o;
  return {
    token: token === null ? null : { ...TOKEN, ...token }, deviceOfKey: null, requestedName: 'cam', fallbackName: 'host',
    nameTaken: (n) => taken.includes(n), keyIsUsers: false, now: NOW, ...rest,
  };
}

describe('redemptionDecision', () => {
  const cases: [string, RedemptionFacts, ReturnType<typeof redemptionDecision> | [string, string]][] = [
    ['a usable token and a free name', facts(), { kind: 'create', name: 'cam', status: 'pending' }],
    ['--approve tokens approve', facts({ token: { approve: true } }), { kind: 'create', name: 'cam', status: 'approved' }],
    ['the token fixes the name', facts({ token: { name: 'fixed' }, requestedName: null }), { kind: 'create', name: 'fixed', status: 'pending' }],
    ['the same name as the token fixes', facts({ token: { name: 'cam' } }), { kind: 'create', name: 'cam', status: 'pending' }],
    ['no --name: the host name', facts({ requestedName: null }), { kind: 'create', name: 'host', status: 'pending' }],
    ['unknown token', facts({ token: null }), ['FERRY_TOKEN_REFUSED', 'the relay does not know this enrollment token: ask an admin for a new one (token create)']],
    ['wrong secret: the same message as unknown', facts({ token: { secretMatches: false } }), ['FERRY_TOKEN_REFUSED', 'the relay does not know this enrollment token: ask an admin for a new one (token create)']],
    ['revoked', facts({ token: { revokedAt: NOW - 1 } }), ['FERRY_TOKEN_REFUSED', `this enrollment token was revoked at ${new Date(NOW - 1).toISOString()} (token rm): ask an admin for a new one`]],
    ['revoked beats the retry case', facts({ token: { revokedAt: NOW - 1 }, deviceOfKey: { name: 'cam', tokenId: 't1' } }), ['FERRY_TOKEN_REFUSED', `this enrollment token was revoked at ${new Date(NOW - 1).toISOString()} (token rm): ask an admin for a new one`]],
    ['the same key again gets its device back, even used up and expired', facts({ token: { usesLeft: 0, expiresAt: NOW }, deviceOfKey: { name: 'cam', tokenId: 't1' }, taken: ['cam'] }), { kind: 'existing', name: 'cam' }],
    ['expired (at the very millisecond)', facts({ token: { expiresAt: NOW } }), ['FERRY_TOKEN_REFUSED', `this enrollment token expired at ${new Date(NOW).toISOString()}: ask an admin for a new one`]],
    ['used up', facts({ token: { usesLeft: 0 } }), ['FERRY_TOKEN_REFUSED', 'this enrollment token has been used up: ask an admin for a new one']],
    ['another name than the token fixes', facts({ token: { name: 'fixed' } }), ['FERRY_TOKEN_REFUSED', "this token is for device 'fixed', not 'cam': drop --name or use a token for that name"]],
    ['no name at all', facts({ requestedName: null, fallbackName: null }), ['FERRY_TOKEN_REFUSED', 'no device name: the token does not fix one and the host name is not usable; start the agent with --name NAME']],
    ['the name is taken', facts({ taken: ['cam'] }), ['FERRY_CONFLICT', "a device named 'cam' is enrolled already: pick another --name, or have an admin run 'device rm cam' first"]],
    ['the key is another device already', facts({ deviceOfKey: { name: 'other', tokenId: 't0' } }), ['FERRY_CONFLICT', 'this agent key is enrolled already as another device']],
    ["the key is an operator's", facts({ keyIsUsers: true }), ['FERRY_CONFLICT', 'this agent key is an operator key: devices need keys of their own']],
  ];
  for (const [what, f, expected] of cases) {
    test(what, () => {
      if (Array.isArray(expected)) assert.throws(() => redemptionDecision(f), { code: expected[0], message: expected[1] });
      else assert.deepEqual(redemptionDecision(f), expected);
    });
  }
});
