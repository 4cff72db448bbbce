import type pg from 'pg';
import type { ApiKeyRecord, KeyStore, NewApiKey } from '../store.ts';
import type { Queryable } from './store.ts';
import { guardPg, inTransaction } from './store.ts';
import { listPage } from './listPage.ts';

interface KeyRow {
  seq: string;
  id: string;
  name: string;
  customer: string | null;
  metadata: Record<string, unknown>;
  scopes: string[];
  prefix: string;
  created_by: string | null;
  created_at: Date;
  updated_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  rotated_at: Date | null;
  rate_limit_policy: string | null;
  quota_limit: string | null;
  quota_soft_limit: string | null;
}

const COLUMNS = 'seq, id, name, customer, metadata, scopes, prefix, created_by, created_at, updated_at, expires_at, revoked_at, rotated_at, rate_limit_policy, quota_limit, quota_soft_limit';

function toRecord(row: KeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    customer: row.customer,
    metadata: row.metadata,
    scopes: row.scopes,
    prefix: row.prefix,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    rotatedAt: row.rotated_at,
    rateLimitPolicy: row.rate_limit_policy,
    quota: row.quota_limit === null ? null : { limit: Number(row.quota_limit), softLimit: row.quota_soft_limit === null ? null : Number(row.quota_soft_limit) },
  };
}

async function insertKey(db: Queryable, k: NewApiKey): Promise<ApiKeyRecord> {
  const res = await db.query<KeyRow>(
    `INSERT INTO api_keys (id, name, customer, metadata, scopes, prefix, created_by, created_at, updated_at, expires_at, rate_limit_policy, quota_limit, quota_soft_limit)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12) RETURNING ${COLUMNS}`,
    [k.id, k.name, k.customer, JSON.stringify(k.metadata), k.scopes, k.prefix, k.createdBy, k.now, k.expiresAt, k.rateLimitPolicy, k.quota?.limit ?? null, k.quota?.softLimit ?? null],
  );
  await db.query('INSERT INTO api_key_secrets (hash, key_id, created_at) VALUES ($1, $2, $3)', [k.secretHash, k.id, k.now]);
  return toRecord(res.rows[0]!);
}

async function getKey(db: Queryable, id: string): Promise<ApiKeyRecord | null> {
  const res = await db.query<KeyRow>(`SELECT ${COLUMNS} FROM api_keys WHERE id = $1`, [id]);
  return res.rows[0] ? toRecord(res.rows[0]) : null;
}

export function createPostgresKeyStore(pool: pg.Pool): KeyStore {
  return {
    async create(k) {
      return inTransaction(pool, (client) => insertKey(client, k));
    },
    async bootstrap(k, facts) {
      return inTransaction(pool, async (client) => {
        const marked = await client.query("INSERT INTO store_meta (name, value) VALUES ('bootstrapped_at', $1) ON CONFLICT DO NOTHING", [k.now.toISOString()]);
        if (marked.rowCount === 0) return null;
        for (const [name, value] of Object.entries(facts)) await client.query('INSERT INTO store_meta (name, value) VALUES ($1, $2)', [name, value]);
        return insertKey(client, k);
      });
    },
    async findBySecretHash(hash) {
      return guardPg(async () => {
        const res = await pool.query<KeyRow & { secret_expires_at: Date | null }>(
          'SELECT k.*, s.expires_at AS secret_expires_at FROM api_key_secrets s JOIN api_keys k ON k.id = s.key_id WHERE s.hash = $1',
          [hash],
        );
        const row = res.rows[0];
        return row ? { key: toRecord(row), secretExpiresAt: row.secret_expires_at } : null;
      });
    },
    async get(id) {
      return guardPg(() => getKey(pool, id));
    },
    async list({ limit, cursor }) {
      return listPage<KeyRow, ApiKeyRecord>(pool, { table: 'api_keys', limit, cursor, map: toRecord });
    },
    async update(id, patch, now) {
      const sets: string[] = [];
      const values: unknown[] = [];
      const set = (column: string, value: unknown): void => {
        values.push(value);
        sets.push(`${column} = $${values.length}`);
      };
      if (patch.name !== undefined) set('name', patch.name);
      if (patch.customer !== undefined) set('customer', patch.customer);
      if (patch.metadata !== undefined) set('metadata', JSON.stringify(patch.metadata));
      if (patch.scopes !== undefined) set('scopes', patch.scopes);
      if (patch.expiresAt !== undefined) set('expires_at', patch.expiresAt);
      if (patch.rateLimitPolicy !== undefined) set('rate_limit_policy', patch.rateLimitPolicy);
      if (patch.quota !== undefined) (set('quota_limit', patch.quota?.limit ?? null), set('quota_soft_limit', patch.quota?.softLimit ?? null));
      set('updated_at', now);
      values.push(id);
      return guardPg(async () => {
        const res = await pool.query<KeyRow>(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = $${values.length} RETURNING ${COLUMNS}`, values);
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async revoke(id, now) {
      return guardPg(async () => {
        const res = await pool.query<KeyRow>(
          `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $1), updated_at = $1 WHERE id = $2 RETURNING ${COLUMNS}`,
          [now, id],
        );
        return res.rows[0] ? toRecord(res.rows[0]) : null;
      });
    },
    async rotate(r) {
      return inTransaction(pool, async (client) => {
        const res = await client.query<KeyRow>(
          `UPDATE api_keys SET prefix = $1, rotated_at = $2, updated_at = $2 WHERE id = $3 RETURNING ${COLUMNS}`,
          [r.prefix, r.now, r.id],
        );
        if (!res.rows[0]) return null;
        await client.query('UPDATE api_key_secrets SET expires_at = least(coalesce(expires_at, $1), $1) WHERE key_id = $2', [r.previousExpiresAt, r.id]);
        await client.query('INSERT INTO api_key_secrets (hash, key_id, created_at) VALUES ($1, $2, $3)', [r.secretHash, r.id, r.now]);
        return toRecord(res.rows[0]);
      });
    },
  };
}
