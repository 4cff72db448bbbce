import type pg from 'pg';
import type { SourcePatch, SourceRecord, SourceStore } from '../store.ts';
import { SlugTakenError } from '../store.ts';
import { guardPg } from './store.ts';
import { listPage } from './listPage.ts';

interface Row {
  seq: string;
  id: string;
  slug: string | null;
  name: string;
  type: string;
  secret_sealed: string;
  previous_secret_sealed: string | null;
  previous_secret_expires_at: Date | null;
  dedup_window_seconds: number;
  body_limit: string;
  rate_limit_policy: string | null;
  rate_limit_mode: 'reject' | 'throttle';
  generic: Record<string, unknown> | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

function toRecord(row: Row): SourceRecord {
  return {
    id: row.id,
    slug: row.slug,
    name: row.name,
    type: row.type,
    secretSealed: row.secret_sealed,
    previousSecretSealed: row.previous_secret_sealed,
    previousSecretExpiresAt: row.previous_secret_expires_at,
    dedupWindowSeconds: row.dedup_window_seconds,
    bodyLimit: Number(row.body_limit),
    rateLimitPolicy: row.rate_limit_policy,
    rateLimitMode: row.rate_limit_mode,
    generic: row.generic,
    metadata: row.metadata,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

const snake = (s: string): string => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const asJson = new Set<keyof SourcePatch>(['generic', 'metadata']);

async function slugTaken<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if ((err as { code?: string; constraint?: string }).code === '23505' && (err as { constraint?: string }).constraint === 'sources_slug_key') throw new SlugTakenError();
    throw err;
  }
}

export function createPostgresSourceStore(pool: pg.Pool): SourceStore {
  return {
    async create(s) {
      return guardPg(() =>
        slugTaken(async () => {
          const res = await pool.query<Row>(
            `INSERT INTO sources (id, slug, name, type, secret_sealed, dedup_window_seconds, body_limit, rate_limit_policy, rate_limit_mode, generic, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) RETURNING *`,
            [s.id, s.slug, s.name, s.type, s.secretSealed, s.dedupWindowSeconds, s.bodyLimit, s.rateLimitPolicy, s.rateLimitMode, s.generic === null ? null : JSON.stringify(s.generic), JSON.stringify(s.metadata), s.now],
          );
          return toRecord(res.rows[0]!);
        }),
      );
    },
    async find(idOrSlug) {
      return guardPg(async () => {
        const res = await pool.query<Row>('SELECT * FROM sources WHERE id = $1 OR slug = $1', [idOrSlug]);
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async list({ limit, cursor }) {
      return listPage<Row, SourceRecord>(pool, { table: 'sources', limit, cursor, map: toRecord });
    },
    async update(id, patch, now) {
      return guardPg(() =>
        slugTaken(async () => {
          const entries = Object.entries(patch).filter(([, v]) => v !== undefined) as [keyof SourcePatch, unknown][];
          const values = entries.map(([k, v]) => (asJson.has(k) && v !== null ? JSON.stringify(v) : v));
          const sets = [...entries.map(([k], i) => `${snake(k)} = $${i + 1}`), `updated_at = $${entries.length + 1}`];
          const res = await pool.query<Row>(`UPDATE sources SET ${sets.join(', ')} WHERE id = $${entries.length + 2} RETURNING *`, [...values, now, id]);
          return res.rows[0] ? toRecord(res.rows[0]) : null;
        }),
      );
    },
    async rotateSecret(r) {
      return guardPg(async () => {
        const res = await pool.query<Row>(
          'UPDATE sources SET secret_sealed = $1, previous_secret_sealed = $2, previous_secret_expires_at = $3, updated_at = $4 WHERE id = $5 RETURNING *',
          [r.secretSealed, r.previousSecretSealed, r.previousExpiresAt, r.now, r.id],
        );
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async delete(id) {
      return guardPg(async () => ((await pool.query('DELETE FROM sources WHERE id = $1', [id])).rowCount ?? 0) > 0);
    },
  };
}
