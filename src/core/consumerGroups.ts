import { typeMatches } from './eventTypes.ts';

/** An event past a group's cursor, as the lease scan reads it (no body, only its size). */
export interface Candidate {
  sourceId: string;
  type: string;
  receivedAt: Date;
  bodyBytes: number;
}

export interface GroupFilter {
  sourceId: string | null;
  types: readonly string[];
  startAt: Date;
}

export function groupMatches(group: GroupFilter, event: Candidate): boolean {
  return (group.sourceId === null || group.sourceId === event.sourceId) && event.receivedAt >= group.startAt && typeMatches(group.types, event.type);
}

/**
 * Which scanned events (in cursor order) to hand out, given the room left in
 * the lease, and how far the cursor may move: past everything taken or not
 * matching, but never past a matching event that did not fit.
 */
export function pickNew<C extends Candidate>(group: GroupFilter, scanned: readonly C[], room: { count: number; bytes: number; any: boolean }): { taken: C[]; consumed: number } {
  const taken: C[] = [];
  let bytes = 0;
  let consumed = 0;
  for (const event of scanned) {
    if (taken.length >= room.count) break;
    if (groupMatches(group, event)) {
      // Always at least one event per lease, however large.
      if ((room.any || taken.length > 0) && bytes + event.bodyBytes > room.bytes) break;
      taken.push(event);
      bytes += event.bodyBytes;
    }
    consumed++;
  }
  return { taken, consumed };
}

/** A receipt names the event it leases, so ack and nack find the row by key. */
export function leaseReceipt(eventId: string, token: string): string {
  return `${eventId}.${token}`;
}

export function receiptEventId(receipt: string): string {
  return receipt.slice(0, receipt.lastIndexOf('.'));
}
