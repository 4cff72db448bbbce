import type { BatchOutcome } from '../groupCommit.ts';

/** SQLSTATE classes 22 (data exception) and 23 (integrity constraint): the server refused what an item held. */
export function isRefusedData(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/**
 * Commits `items` together; when the server refuses the data of one of them,
 * commits each alone, in order, so only that one fails and the others (which
 * would otherwise wait to be sent or delivered again) are kept. Any other
 * failure (the store unreachable, a timeout) fails the rest without trying them.
 */
export async function commitEachOnRefusal<I, O>(items: I[], commit: (items: I[]) => Promise<BatchOutcome<O>[]>): Promise<BatchOutcome<O>[]> {
  try {
    return await commit(items);
  } catch (err) {
    if (items.length === 1 || !isRefusedData(err)) throw err;
  }
  const outcomes: BatchOutcome<O>[] = [];
  let stopped: unknown = null;
  for (const item of items) {
    if (stopped !== null) {
      outcomes.push({ ok: false, error: stopped });
      continue;
    }
    try {
      outcomes.push((await commit([item]))[0]!);
    } catch (error) {
      outcomes.push({ ok: false, error });
      if (!isRefusedData(error)) stopped = error;
    }
  }
  return outcomes;
}
