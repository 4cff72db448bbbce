import type { NewSource, SourcePatch, SourceRecord, SourceStore } from '../store.ts';
import { SlugTakenError } from '../store.ts';
import { afterSeq, seqPage } from './seqPage.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

interface Row {
  seq: number;
  id: string;
  slug: string | null;
  name: string;
  type: string;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: number | null;
  dedup_window_seconds: number;
  body_limit: number;
  rate_limit_policy: string | null;
  rate_limit_mode: 'reject' | 'throttle';
  generic: string | null;
  metadata: string;
  created_at: number;
  updated_at: number;
}

function toRecord(row: Row): SourceRecord {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    type: row.type,
    secretSealed: row.secret_sealed,
    previousSecretSealed: row.previous_secret_sealed,
    previousSecretExpiresAt: row.previous_secret_expires_at === null ? null : new Date(row.previous_secret_expires_at),
    dedupWindowSeconds: row.dedup_window_seconds,
    bodyLimit: row.body_limit,
    rateLimitPolicy: row.rate_limit_policy,
    rateLimitMode: row.rate_limit_mode,
    generic: row.generic === null ? null : (JSON.parse(row.generic) as Record<string, unknown>),
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

const COLUMNS: Record<keyof SourcePatch, (v: unknown) => unknown> = {
  slug: (v) => v,
  name: (v) => v,
  dedupWindowSeconds: (v) => v,
  bodyLimit: (v) => v,
  rateLimitPolicy: (v) => v,
  rateLimitMode: (v) => v,
  generic: (v) => (v === null ? null : JSON.stringify(v)),
  metadata: (v) => JSON.stringify(v),
};
const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** SQLite reports a unique violation as SQLITE_CONSTRAINT_UNIQUE naming the column. */
function slugTaken<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE' && /sources\.slug/.test((err as Error).message)) throw new SlugTakenError();
    throw err;
  }
}

export function createSqliteSourceStore(db: SqliteDb): SourceStore {
  const sql = statementCache(db);
  const get = (id: string): SourceRecord | null => {
    const row = sql('SELECT * FROM sources WHERE id = ?').get(id) as Row | undefined;
    return row ? toRecord(row) : null;
  };
  return {
    async create(s) {
      return guard(() =>
        slugTaken(() => {
          sql(
            `INSERT INTO sources (id, slug, name, type, secret_sealed, dedup_window_seconds, body_limit, rate_limit_policy, rate_limit_mode, generic, metadata, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          ).run(
            s.id,
            s.slug,
            s.name,
            s.type,
            s.secretSealed,
            s.dedupWindowSeconds,
            s.bodyLimit,
            s.rateLimitPolicy,
            s.rateLimitMode,
            s.generic === null ? null : JSON.stringify(s.generic),
            JSON.stringify(s.metadata),
            s.now.getTime(),
            s.now.getTime(),
          );
          return get(s.id)!;
        }),
      );
    },
    async find(idOrSlug) {
      return guard(() => {
        const row = sql('SELECT * FROM sources WHERE id = ? OR slug = ?').get(idOrSlug, idOrSlug) as Row | undefined;
        return row ? toRecord(row) : null;
      });
    },
    async list({ limit, cursor }) {
      const after = afterSeq(cursor);
      return seqPage(guard(() => sql('SELECT * FROM sources WHERE seq > ? ORDER BY seq LIMIT ?').all(after, limit + 1) as Row[]), limit, toRecord);
    },
    async update(id, patch, now) {
      return guard(() =>
        slugTaken(() => {
          const entries = Object.entries(patch).filter(([, v]) => v !== undefined) as [keyof SourcePatch, unknown][];
          const sets = [...entries.map(([k]) => `${snake(k)} = ?`), 'updated_at = ?'];
          const res = sql(`UPDATE sources SET ${sets.join(', ')} WHERE id = ?`).run(...entries.map(([k, v]) => COLUMNS[k](v)), now.getTime(), id);
          return res.changes === 0 ? null : get(id);
        }),
      );
    },
    async rotateSecret(r) {
      return guard(() => {
        const res = sql('UPDATE sources SET secret_sealed = ?, previous_secret_sealed = ?, previous_secret_expires_at = ?, updated_at = ? WHERE id = ?').run(
          r.secretSealed,
          r.previousSecretSealed,
          r.previousExpiresAt?.getTime() ?? null,
          r.now.getTime(),
          r.id,
        );
        return res.changes === 0 ? null : get(r.id);
      });
    },
    async delete(id) {
      return guard(() => sql('DELETE FROM sources WHERE id = ?').run(id).changes > 0);
    },
  };
}
