import type pg from 'pg';
import type { EndpointPatch, EndpointRecord, EndpointStore } from '../deliveryStore.ts';
import { guardPg, inTransaction } from './store.ts';
import { listPage } from './listPage.ts';
import { insertMessage } from './messages.ts';

interface Row {
  seq: string;
  id: string;
  url: string;
  description: string;
  event_types: string[];
  source_ids: string[];
  headers: Record<string, string>;
  rate_limit_per_second: number | null;
  timeout_ms: number;
  retry_schedule: number[] | null;
  enabled: boolean;
  disabled_reason: string | null;
  metadata: Record<string, unknown>;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | null;
  consecutive_failures: number;
  failing_since: Date | null;
  created_at: Date;
  updated_at: Date;
}

function toRecord(row: Row): EndpointRecord {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: row.event_types,
    sourceIds: row.source_ids,
    headers: row.headers,
    rateLimitPerSecond: row.rate_limit_per_second,
    timeoutMs: row.timeout_ms,
    retrySchedule: row.retry_schedule,
    enabled: row.enabled,
    disabledReason: row.disabled_reason,
    metadata: row.metadata,
    secretSealed: row.secret_sealed,
    previousSecretSealed: row.previous_secret_sealed,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    consecutiveFailures: row.consecutive_failures,
    failingSince: row.failing_since,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const COLUMNS: Record<keyof EndpointPatch, (param: string) => string> = {
  url: (p) => `url = ${p}`,
  description: (p) => `description = ${p}`,
  eventTypes: (p) => `event_types = ${p}`,
  sourceIds: (p) => `source_ids = ${p}`,
  // RFC 7396 on a flat object, as the patch asks: the given keys replace, then those set to null go.
  headers: (p) => `headers = jsonb_strip_nulls(headers || ${p}::jsonb)`,
  rateLimitPerSecond: (p) => `rate_limit_per_second = ${p}`,
  timeoutMs: (p) => `timeout_ms = ${p}`,
  retrySchedule: (p) => `retry_schedule = ${p}`,
  enabled: (p) => `enabled = ${p}`,
  metadata: (p) => `metadata = ${p}`,
};
// node-postgres would send a JS array as a PostgreSQL array, not JSON: these go as JSON text.
const JSON_COLUMNS = new Set<keyof EndpointPatch>(['eventTypes', 'sourceIds', 'headers', 'retrySchedule', 'metadata']);

// Enabling a disabled endpoint by hand starts it afresh: no reason, no failure streak.
// (In SET, `enabled` is the row's value before this update.) An endpoint already
// enabled keeps its streak, so a PATCH repeating `enabled: true` cannot hide a failing one.
const REENABLE = `disabled_reason = CASE WHEN enabled THEN disabled_reason END,
  consecutive_failures = CASE WHEN enabled THEN consecutive_failures ELSE 0 END,
  failing_since = CASE WHEN enabled THEN failing_since END`;

export function createPostgresEndpointStore(pool: pg.Pool): EndpointStore {
  const one = async (text: string, values: unknown[]): Promise<EndpointRecord | null> => {
    const res = await pool.query<Row>(text, values);
    return res.rows[0] ? toRecord(res.rows[0]) : null;
  };
  return {
    async create(e) {
      return guardPg(async () => {
        const created = await one(
          `INSERT INTO endpoints (id, url, description, event_types, source_ids, headers, rate_limit_per_second, timeout_ms, retry_schedule, enabled, metadata, secret_sealed, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING *`,
          [
            e.id,
            e.url,
            e.description,
            JSON.stringify(e.eventTypes),
            JSON.stringify(e.sourceIds),
            JSON.stringify(e.headers),
            e.rateLimitPerSecond,
            e.timeoutMs,
            e.retrySchedule === null ? null : JSON.stringify(e.retrySchedule),
            e.enabled,
            JSON.stringify(e.metadata),
            e.secretSealed,
            e.now,
          ],
        );
        return created!;
      });
    },
    async get(id) {
      return guardPg(() => one('SELECT * FROM endpoints WHERE id = $1', [id]));
    },
    async list({ limit, cursor }) {
      return listPage<Row, EndpointRecord>(pool, { table: 'endpoints', limit, cursor, map: toRecord });
    },
    async update(id, patch, now) {
      return guardPg(() => {
        const entries = Object.entries(patch).filter(([, v]) => v !== undefined) as [keyof EndpointPatch, unknown][];
        const values = entries.map(([k, v]) => (JSON_COLUMNS.has(k) && v !== null ? JSON.stringify(v) : v));
        const sets = [...(patch.enabled === true ? [REENABLE] : []), ...entries.map(([k], i) => COLUMNS[k](`$${i + 1}`)), `updated_at = $${entries.length + 1}`];
        return one(`UPDATE endpoints SET ${sets.join(', ')} WHERE id = $${entries.length + 2} RETURNING *`, [...values, now, id]);
      });
    },
    async rotateSecret(r) {
      return guardPg(() =>
        one('UPDATE endpoints SET secret_sealed = $1, previous_secret_sealed = $2, previous_secret_expires_at = $3, updated_at = $4 WHERE id = $5 RETURNING *', [
          r.secretSealed,
          r.previousSecretSealed,
          r.previousExpiresAt,
          r.now,
          r.id,
        ]),
      );
    },
    async delete(id, now) {
      return inTransaction(pool, async (client) => {
        // Its waiting deliveries will never go out: dead-lettered, with the reason, rather than left pending.
        await client.query("UPDATE deliveries SET status = 'dead', last_error = 'endpoint deleted', updated_at = $2 WHERE endpoint_id = $1 AND status = 'pending'", [id, now]);
        return ((await client.query('DELETE FROM endpoints WHERE id = $1', [id])).rowCount ?? 0) > 0;
      });
    },
    async all() {
      return guardPg(async () => (await pool.query<Row>('SELECT * FROM endpoints ORDER BY seq')).rows.map(toRecord));
    },
    async recordResult(id, ok, now) {
      return guardPg(async () => {
        const res = ok
          ? await pool.query<Pick<Row, 'consecutive_failures' | 'failing_since'>>(
              'UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL WHERE id = $1 RETURNING consecutive_failures, failing_since',
              [id],
            )
          : await pool.query<Pick<Row, 'consecutive_failures' | 'failing_since'>>(
              'UPDATE endpoints SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, $2) WHERE id = $1 RETURNING consecutive_failures, failing_since',
              [id, now],
            );
        const row = res.rows[0];
        return row ? { consecutiveFailures: row.consecutive_failures, failingSince: row.failing_since } : null;
      });
    },
    async disable(id, reason, now, announcement) {
      return inTransaction(pool, async (client) => {
        const res = await client.query('UPDATE endpoints SET enabled = false, disabled_reason = $2, updated_at = $3 WHERE id = $1 AND enabled', [id, reason, now]);
        if ((res.rowCount ?? 0) === 0) return false;
        await insertMessage(client, announcement.message, announcement.deliveries);
        return true;
      });
    },
  };
}
