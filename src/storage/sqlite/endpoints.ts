import type { EndpointPatch, EndpointRecord, EndpointStore } from '../deliveryStore.ts';
import { insertMessage } from './messages.ts';
import { afterSeq, seqPage } from './seqPage.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

interface Row {
  seq: number;
  id: string;
  url: string;
  description: string;
  event_types: string;
  source_ids: string;
  headers: string;
  rate_limit_per_second: number | null;
  timeout_ms: number;
  retry_schedule: string | null;
  enabled: number;
  disabled_reason: string | null;
  metadata: string;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: number | null;
  consecutive_failures: number;
  failing_since: number | null;
  created_at: number;
  updated_at: number;
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

function toRecord(row: Row): EndpointRecord {
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: JSON.parse(row.event_types) as string[],
    sourceIds: JSON.parse(row.source_ids) as string[],
    headers: JSON.parse(row.headers) as Record<string, string>,
    rateLimitPerSecond: row.rate_limit_per_second,
    timeoutMs: row.timeout_ms,
    retrySchedule: row.retry_schedule === null ? null : (JSON.parse(row.retry_schedule) as number[]),
    enabled: row.enabled === 1,
    disabledReason: row.disabled_reason,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    secretSealed: row.secret_sealed,
    previousSecretSealed: row.previous_secret_sealed,
    previousSecretExpiresAt: date(row.previous_secret_expires_at),
    consecutiveFailures: row.consecutive_failures,
    failingSince: date(row.failing_since),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

const json = (v: unknown): unknown => (v === null ? null : JSON.stringify(v));
const COLUMNS: Record<keyof EndpointPatch, [set: string, toValue: (v: unknown) => unknown]> = {
  url: ['url = ?', (v) => v],
  description: ['description = ?', (v) => v],
  eventTypes: ['event_types = ?', json],
  sourceIds: ['source_ids = ?', json],
  // RFC 7396, as the patch asks: SQLite's json_patch is exactly that.
  headers: ['headers = json_patch(headers, ?)', json],
  rateLimitPerSecond: ['rate_limit_per_second = ?', (v) => v],
  timeoutMs: ['timeout_ms = ?', (v) => v],
  retrySchedule: ['retry_schedule = ?', json],
  enabled: ['enabled = ?', (v) => (v ? 1 : 0)],
  metadata: ['metadata = ?', json],
};

// Enabling a disabled endpoint by hand starts it afresh: no reason, no failure streak.
// (In SET, `enabled` is the row's value before this update.) An endpoint already
// enabled keeps its streak, so a PATCH repeating `enabled: true` cannot hide a failing one.
const REENABLE = `disabled_reason = CASE WHEN enabled = 1 THEN disabled_reason ELSE NULL END,
  consecutive_failures = CASE WHEN enabled = 1 THEN consecutive_failures ELSE 0 END,
  failing_since = CASE WHEN enabled = 1 THEN failing_since ELSE NULL END`;

export function createSqliteEndpointStore(db: SqliteDb): EndpointStore {
  const sql = statementCache(db);
  const get = (id: string): EndpointRecord | null => {
    const row = sql('SELECT * FROM endpoints WHERE id = ?').get(id) as Row | undefined;
    return row ? toRecord(row) : null;
  };
  return {
    async create(e) {
      return guard(() => {
        sql(
          `INSERT INTO endpoints (id, url, description, event_types, source_ids, headers, rate_limit_per_second, timeout_ms, retry_schedule, enabled, metadata, secret_sealed, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          e.id,
          e.url,
          e.description,
          JSON.stringify(e.eventTypes),
          JSON.stringify(e.sourceIds),
          JSON.stringify(e.headers),
          e.rateLimitPerSecond,
          e.timeoutMs,
          json(e.retrySchedule),
          e.enabled ? 1 : 0,
          JSON.stringify(e.metadata),
          e.secretSealed,
          e.now.getTime(),
          e.now.getTime(),
        );
        return get(e.id)!;
      });
    },
    async get(id) {
      return guard(() => get(id));
    },
    async list({ limit, cursor }) {
      const after = afterSeq(cursor);
      return seqPage(guard(() => sql('SELECT * FROM endpoints WHERE seq > ? ORDER BY seq LIMIT ?').all(after, limit + 1) as Row[]), limit, toRecord);
    },
    async update(id, patch, now) {
      return guard(() => {
        const entries = Object.entries(patch).filter(([, v]) => v !== undefined) as [keyof EndpointPatch, unknown][];
        const sets = [...(patch.enabled === true ? [REENABLE] : []), ...entries.map(([k]) => COLUMNS[k][0]), 'updated_at = ?'];
        const res = sql(`UPDATE endpoints SET ${sets.join(', ')} WHERE id = ?`).run(...entries.map(([k, v]) => COLUMNS[k][1](v)), now.getTime(), id);
        return res.changes === 0 ? null : get(id);
      });
    },
    async rotateSecret(r) {
      return guard(() => {
        const res = sql('UPDATE endpoints SET secret_sealed = ?, previous_secret_sealed = ?, previous_secret_expires_at = ?, updated_at = ? WHERE id = ?').run(
          r.secretSealed,
          r.previousSecretSealed,
          r.previousExpiresAt?.getTime() ?? null,
          r.now.getTime(),
          r.id,
        );
        return res.changes === 0 ? null : get(r.id);
      });
    },
    async delete(id, now) {
      return guard(() =>
        db
          .transaction(() => {
            // Its waiting deliveries will never go out: dead-lettered, with the reason, rather than left pending.
            sql("UPDATE deliveries SET status = 'dead', last_error = 'endpoint deleted', updated_at = ? WHERE endpoint_id = ? AND status = 'pending'").run(now.getTime(), id);
            return sql('DELETE FROM endpoints WHERE id = ?').run(id).changes > 0;
          })
          .immediate(),
      );
    },
    async all() {
      return guard(() => (sql('SELECT * FROM endpoints ORDER BY seq').all() as Row[]).map(toRecord));
    },
    async recordResult(id, ok, now) {
      return guard(() => {
        const row = (
          ok
            ? sql('UPDATE endpoints SET consecutive_failures = 0, failing_since = NULL WHERE id = ? RETURNING consecutive_failures, failing_since').get(id)
            : sql('UPDATE endpoints SET consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, ?) WHERE id = ? RETURNING consecutive_failures, failing_since').get(now.getTime(), id)
        ) as Pick<Row, 'consecutive_failures' | 'failing_since'> | undefined;
        return row ? { consecutiveFailures: row.consecutive_failures, failingSince: date(row.failing_since) } : null;
      });
    },
    async disable(id, reason, now, announcement) {
      return guard(() =>
        db
          .transaction(() => {
            if (sql('UPDATE endpoints SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE id = ? AND enabled = 1').run(reason, now.getTime(), id).changes === 0) return false;
            insertMessage(db, announcement.message, announcement.deliveries);
            return true;
          })
          .immediate(),
      );
    },
  };
}
