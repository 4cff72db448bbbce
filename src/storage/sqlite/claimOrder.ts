/** A row a claim found: due (or its lease expired) at `due`, in the queue's order `seq`. */
export interface Due {
  id: string;
  due: number;
  seq: number;
}

/**
 * The ids a claim leases, as JSON for `json_each`: of the due rows and the
 * expired leases (each read apart, in its index's order), the first `limit`
 * by time, then queue order.
 */
export function firstDueIds(found: Due[], limit: number): string {
  found.sort((a, b) => a.due - b.due || a.seq - b.seq);
  return JSON.stringify(found.slice(0, limit).map((f) => f.id));
}
