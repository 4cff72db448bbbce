import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import type { TestContext } from 'node:test';

/** The shared Redis the suite uses; `.ci/run` makes sure it is up. */
export const TEST_REDIS_URL = process.env.PORTCULLIS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function reachable(url: string): Promise<string | null> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.setTimeout(2000, () => (socket.destroy(), resolve('timed out')));
    socket.once('error', (err) => resolve(err.message));
    socket.connect(Number(u.port || 6379), u.hostname, () => {
      socket.end();
      resolve(null);
    });
  });
}

/**
 * Skips the test when Redis is not reachable — except under CI=true, where a
 * missing Redis fails the test instead.
 */
export async function requireRedis(t: TestContext): Promise<boolean> {
  const problem = await reachable(TEST_REDIS_URL);
  if (problem === null) return true;
  if (process.env.CI === 'true') throw new Error(`Redis is not reachable at ${TEST_REDIS_URL} (${problem}); CI=true never skips it`);
  t.skip(`Redis not reachable at ${TEST_REDIS_URL} (${problem})`);
  return false;
}

/** A policy name no other test run uses, so runs sharing the Redis never share counters. */
export function uniquePolicyName(base: string): string {
  return `${base}-${randomBytes(6).toString('hex')}`;
}
