import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { describeStep } from '../core/gcra.ts';
import type { RateDecision, RatePolicy } from '../core/gcra.ts';
import type { Metrics } from '../observe/metrics.ts';
import type { ApiKeyRecord, SourceRecord } from '../storage/store.ts';
import type { Limiter } from './limiter.ts';
import { LimiterUnavailable } from './limiter.ts';

export interface Policy extends RatePolicy {
  onStoreError: 'open' | 'closed' | null;
}

export type LimitOutcome =
  | { kind: 'decided'; decision: RateDecision }
  /** The store could not answer; the policy let the request through, or refuses it. */
  | { kind: 'unavailable'; policy: Policy; failClosed: boolean };

export interface RateLimits {
  policies: ReadonlyMap<string, Policy>;
  /** The policy an API key is limited by: its own, else `rateLimits.perKey`. */
  forKey(key: ApiKeyRecord): Policy | undefined;
  /** One GCRA step for `identity`; `write` picks the default when the store is down. */
  /** `requestLog`: the request's logger, so a store failure is logged with its request id (else the service's). */
  check(policy: Policy, identity: string, write: boolean, requestLog?: Pick<Logger, 'warn'>): LimitOutcome | Promise<LimitOutcome>;
  /** The policy a source's deliveries are limited by; none unless the source names one (an unknown name is logged once and ignored). */
  forSource(source: Pick<SourceRecord, 'id' | 'rateLimitPolicy'>): Policy | undefined;
}

/** The limiter identity of one source, shared by its reject and throttle modes. */
export function sourceIdentity(sourceId: string): string {
  return `source:${sourceId}`;
}

export function policiesFrom(config: Config): Map<string, Policy> {
  return new Map(
    Object.entries(config.rateLimits.policies).map(([name, p]) => [
      name,
      { name, limit: p.limit, windowSeconds: p.window, burst: p.burst ?? p.limit, onStoreError: p.onStoreError ?? null },
    ]),
  );
}

/** Named policies over a limiter store, with the metrics and logs every check shares. */
export function createRateLimits(config: Config, limiter: Limiter, metrics: Metrics, clock: () => Date, log: Logger): RateLimits {
  const policies = policiesFrom(config);
  const perKey = config.rateLimits.perKey ? policies.get(config.rateLimits.perKey) : undefined;
  const unknownWarned = new Set<string>();

  const decided = (policy: Policy, step: { allowed: boolean; tatUs: number }, nowUs: number): LimitOutcome => {
    const decision = describeStep(policy, step, nowUs, 1);
    if (!decision.allowed) metrics.rateLimited.inc({ policy: policy.name });
    return { kind: 'decided', decision };
  };
  const unavailable = (policy: Policy, write: boolean, err: unknown, requestLog: Pick<Logger, 'warn'> = log): LimitOutcome => {
    if (!(err instanceof LimiterUnavailable)) throw err;
    const failClosed = (policy.onStoreError ?? (write ? 'closed' : 'open')) === 'closed';
    metrics.rateLimitStoreErrors.inc({ policy: policy.name, outcome: failClosed ? 'refused' : 'allowed' });
    requestLog.warn({ policy: policy.name, err: err.message, failClosed }, 'rate-limit store unavailable');
    return { kind: 'unavailable', policy, failClosed };
  };

  return {
    policies,
    forKey(key) {
      if (!key.rateLimitPolicy) return perKey;
      const own = policies.get(key.rateLimitPolicy);
      if (own) return own;
      // The key names a policy the configuration no longer has: fall back to the default.
      if (!unknownWarned.has(key.rateLimitPolicy)) log.warn({ policy: key.rateLimitPolicy, keyId: key.id }, 'key names an unknown rate-limit policy; using the default');
      unknownWarned.add(key.rateLimitPolicy);
      return perKey;
    },
    check(policy, identity, write, requestLog) {
      const nowUs = clock().getTime() * 1000;
      let taken;
      try {
        taken = limiter.take(`${policy.name}:${identity}`, policy, nowUs, 1);
      } catch (err) {
        return unavailable(policy, write, err, requestLog);
      }
      if (!(taken instanceof Promise)) return decided(policy, taken, nowUs);
      return taken.then(
        (step) => decided(policy, step, nowUs),
        (err: unknown) => unavailable(policy, write, err, requestLog),
      );
    },
    forSource(source) {
      if (!source.rateLimitPolicy) return undefined;
      const own = policies.get(source.rateLimitPolicy);
      // Sources have no default policy: one whose policy left the configuration is not limited.
      if (!own && !unknownWarned.has(source.rateLimitPolicy)) {
        log.warn({ policy: source.rateLimitPolicy, sourceId: source.id }, 'source names an unknown rate-limit policy; not limited');
        unknownWarned.add(source.rateLimitPolicy);
      }
      return own;
    },
  };
}
