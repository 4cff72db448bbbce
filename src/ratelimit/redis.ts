import { Redis } from 'ioredis';
import { emissionIntervalUs } from '../core/gcra.ts';
import type { Limiter } from './limiter.ts';
import { LimiterUnavailable } from './limiter.ts';

/**
 * The GCRA step of src/core/gcra.ts, run atomically inside Redis so every
 * process shares exact counts. KEYS[1] holds the TAT in µs and expires when the
 * TAT passes (the identity is then back to its full burst).
 * ARGV: now µs, emission interval µs, burst, cost. Returns {allowed, tat}.
 */
const GCRA_LUA = `
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nxt = tat + cost * interval
if nxt - now > burst * interval then
  return {0, string.format('%d', tat)}
end
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.max(1, math.ceil((nxt - now) / 1000)))
return {1, string.format('%d', nxt)}
`;

interface GcraCommands {
  portcullisGcra(key: string, now: number, interval: number, burst: number, cost: number): Promise<[number, string]>;
}

export interface RedisLimiterOptions {
  url: string;
  /** A step that takes longer fails (the policy then fails open or closed). */
  timeoutMs: number;
  keyPrefix?: string;
}

/**
 * Rate-limit state in Redis. A request never waits for a reconnect: with the
 * offline queue off, a command sent while the connection is down fails at once,
 * and a hung server is cut short by the command timeout. ioredis reconnects by
 * itself, so limits recover without a restart.
 */
export function createRedisLimiter(options: RedisLimiterOptions): Limiter & { redis: Redis } {
  const redis = new Redis(options.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.timeoutMs,
    connectTimeout: Math.max(1000, options.timeoutMs),
    // Reconnect quickly at first, then every 2 s at most.
    retryStrategy: (times) => Math.min(times * 100, 2000),
    keyPrefix: options.keyPrefix ?? 'portcullis:rl:',
  });
  // Connection errors surface on commands (as LimiterUnavailable); without a listener ioredis would print them.
  redis.on('error', () => undefined);
  redis.defineCommand('portcullisGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  const commands = redis as unknown as GcraCommands;

  return {
    kind: 'redis',
    redis,
    async take(key, policy, nowUs, cost) {
      try {
        const [allowed, tat] = await commands.portcullisGcra(key, nowUs, emissionIntervalUs(policy), policy.burst, cost);
        return { allowed: allowed === 1, tatUs: Number(tat) };
      } catch (err) {
        throw new LimiterUnavailable((err as Error).message);
      }
    },
    entries: () => null,
    async ready(timeoutMs) {
      if (redis.status === 'ready') return true;
      return new Promise<boolean>((resolve) => {
        const done = (ok: boolean): void => {
          clearTimeout(timer);
          redis.off('ready', onReady);
          resolve(ok);
        };
        const onReady = (): void => done(true);
        const timer = setTimeout(() => done(false), timeoutMs);
        redis.once('ready', onReady);
      });
    },
    async close() {
      redis.disconnect();
    },
  };
}
