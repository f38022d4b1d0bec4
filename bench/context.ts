/** What every scenario gets from bench/run.ts, and what it returns. */
import type { ServicePorts } from './children/device-services.ts';
import type { Scope } from './processes.ts';
import type { ScenarioResult } from './results.ts';
import type { Key } from './ssh-config.ts';

/** The scenario's own scope and temp dir, the run's mode, and the shared keys and device services. */
export interface BenchContext {
  scope: Scope;
  dir: string;
  quick: boolean;
  /** Where relay and agent processes write CPU profiles (--profile), or null. */
  profileDir: string | null;
  services: ServicePorts;
  /** The operator's key: user admin on the ferry relay, root on the baseline sshd and on the device's sshd. */
  operatorKey: Key;
  /** The device's key for `ssh -R` to the baseline sshd. */
  deviceKey: Key;
  log(message: string): void;
}

/** A benchmark scenario. */
export interface Scenario {
  name: string;
  /** Rough seconds it takes, quick and full, for the plan printed at the start. */
  seconds: { quick: number; full: number };
  run(ctx: BenchContext): Promise<ScenarioResult>;
}
