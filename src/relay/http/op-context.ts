/** The operation context for a request of the HTTP API: the running relay's store, clock, address and live state. */
import type { RelayContext } from '../context.ts';
import type { OperationContext } from '../operations/index.ts';

/** What every HTTP route runs its operation with: as the SSH command line does, plus the console's URL. */
export function operationContext(ctx: RelayContext): OperationContext {
  return {
    store: ctx.store,
    now: ctx.clock.now(),
    relay: { publicAddress: ctx.publicAddress, fingerprint: ctx.fingerprint, hostKeyLine: ctx.hostKeyLine, consoleUrl: ctx.consoleUrl, agentEndpoints: ctx.agentEndpoints, tlsPin: ctx.tlsPin },
    dataDir: ctx.config.dataDir,
    onChange: (device) => ctx.reconcile(device),
    cloneOf: (device) => ctx.registry.cloneOf(device),
    liveReaches: () => ctx.sessions.reaches(),
  };
}
