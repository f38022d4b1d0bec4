/** The WebSocket link (agent → relay over wss://…/v1/agent) does not exist yet; this row says so until it does. */
import type { Scenario } from '../context.ts';

export const wssLinkScenario: Scenario = {
  name: 'wss-link',
  seconds: { quick: 0, full: 0 },
  run() {
    return Promise.resolve({
      name: 'wss-link',
      rows: [{
        scenario: 'wss link', metric: 'throughput and round trip vs TCP link', unit: 'ratio', better: 'higher', ferry: null, openssh: null,
        target: '≥ 0.8 of TCP', missing: 'not measured: the WebSocket link does not exist yet (a later issue)',
      }],
      notes: [],
    });
  },
};
