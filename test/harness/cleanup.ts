import type { TestContext } from 'node:test';

// Cleanups of one test run last-in first-out, so whatever uses a store (a
// second instance, a child process) is stopped before the store is dropped.
// node:test runs `t.after` hooks first-in first-out and skips the rest after
// one throws, which once left a second instance running after its schema's
// drop failed, and its test file never exited.
const cleanups = new WeakMap<TestContext, Array<() => Promise<void> | void>>();

/** Registers `fn` to run after the test, before anything registered earlier; every one runs even when another throws. */
export function onCleanup(t: TestContext, fn: () => Promise<void> | void): void {
  let stack = cleanups.get(t);
  if (!stack) {
    const created: Array<() => Promise<void> | void> = [];
    stack = created;
    cleanups.set(t, created);
    t.after(async () => {
      const errors: unknown[] = [];
      while (created.length > 0) {
        try {
          await created.pop()!();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, 'cleanups failed');
    });
  }
  stack.push(fn);
}
