import type { ApiKeyRecord, KeyStore, NewApiKey } from '../store.ts';
import { afterSeq, seqPage } from './seqPage.ts';
import type { SqliteDb } from './store.ts';
import { guard, statementCache } from './store.ts';

interface KeyRow {
  seq: number;
  id: string;
  name: string;
  customer: string | null;
  metadata: string;
  scopes: string;
  prefix: string;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  rotated_at: number | null;
  rate_limit_policy: string | null;
  quota_limit: number | null;
  quota_soft_limit: number | null;
}

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms));

function toRecord(row: KeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    customer: row.customer,
    metadata: JSON.parse(row.metadata) as Record<string, unknown>,
    scopes: JSON.parse(row.scopes) as string[],
    prefix: row.prefix,
    createdBy: row.created_by,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    expiresAt: date(row.expires_at),
    revokedAt: date(row.revoked_at),
    rotatedAt: date(row.rotated_at),
    rateLimitPolicy: row.rate_limit_policy,
    quota: row.quota_limit === null ? null : { limit: Number(row.quota_limit), softLimit: row.quota_soft_limit === null ? null : Number(row.quota_soft_limit) },
  };
}

export function createSqliteKeyStore(db: SqliteDb): KeyStore {
  const sql = statementCache(db);
  const insertKey = (k: NewApiKey): void => {
    sql(
      `INSERT INTO api_keys (id, name, customer, metadata, scopes, prefix, created_by, created_at, updated_at, expires_at, rate_limit_policy, quota_limit, quota_soft_limit)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      k.id,
      k.name,
      k.customer,
      JSON.stringify(k.metadata),
      JSON.stringify(k.scopes),
      k.prefix,
      k.createdBy,
      k.now.getTime(),
      k.now.getTime(),
      k.expiresAt?.getTime() ?? null,
      k.rateLimitPolicy,
      k.quota?.limit ?? null,
      k.quota?.softLimit ?? null,
    );
    sql('INSERT INTO api_key_secrets (hash, key_id, created_at) VALUES (?, ?, ?)').run(k.secretHash, k.id, k.now.getTime());
  };
  const get = (id: string): ApiKeyRecord | null => {
    const row = sql('SELECT * FROM api_keys WHERE id = ?').get(id) as KeyRow | undefined;
    return row ? toRecord(row) : null;
  };
  const createTx = db.transaction((k: NewApiKey) => {
    insertKey(k);
    return get(k.id)!;
  });
  const bootstrapTx = db.transaction((k: NewApiKey, facts: Record<string, string>) => {
    const marked = sql("INSERT INTO store_meta (name, value) VALUES ('bootstrapped_at', ?) ON CONFLICT DO NOTHING").run(k.now.toISOString());
    if (marked.changes === 0) return null;
    for (const [name, value] of Object.entries(facts)) sql('INSERT INTO store_meta (name, value) VALUES (?, ?)').run(name, value);
    insertKey(k);
    return get(k.id)!;
  });
  const rotateTx = db.transaction((id: string, prefix: string, hash: string, previousExpiresAt: number, now: number) => {
    const changed = sql('UPDATE api_keys SET prefix = ?, rotated_at = ?, updated_at = ? WHERE id = ?').run(prefix, now, now, id);
    if (changed.changes === 0) return null;
    sql('UPDATE api_key_secrets SET expires_at = min(coalesce(expires_at, ?), ?) WHERE key_id = ?').run(previousExpiresAt, previousExpiresAt, id);
    sql('INSERT INTO api_key_secrets (hash, key_id, created_at) VALUES (?, ?, ?)').run(hash, id, now);
    return get(id);
  });

  return {
    async create(k) {
      return guard(() => createTx.immediate(k));
    },
    async bootstrap(k, facts) {
      return guard(() => bootstrapTx.immediate(k, facts));
    },
    async findBySecretHash(hash) {
      return guard(() => {
        const row = sql('SELECT k.*, s.expires_at AS secret_expires_at FROM api_key_secrets s JOIN api_keys k ON k.id = s.key_id WHERE s.hash = ?').get(hash) as
          | (KeyRow & { secret_expires_at: number | null })
          | undefined;
        return row ? { key: toRecord(row), secretExpiresAt: date(row.secret_expires_at) } : null;
      });
    },
    async get(id) {
      return guard(() => get(id));
    },
    async list({ limit, cursor }) {
      const after = afterSeq(cursor);
      return seqPage(guard(() => sql('SELECT * FROM api_keys WHERE seq > ? ORDER BY seq LIMIT ?').all(after, limit + 1) as KeyRow[]), limit, toRecord);
    },
    async update(id, patch, now) {
      return guard(() => {
        const sets: string[] = [];
        const values: unknown[] = [];
        if (patch.name !== undefined) (sets.push('name = ?'), values.push(patch.name));
        if (patch.customer !== undefined) (sets.push('customer = ?'), values.push(patch.customer));
        if (patch.metadata !== undefined) (sets.push('metadata = ?'), values.push(JSON.stringify(patch.metadata)));
        if (patch.scopes !== undefined) (sets.push('scopes = ?'), values.push(JSON.stringify(patch.scopes)));
        if (patch.expiresAt !== undefined) (sets.push('expires_at = ?'), values.push(patch.expiresAt?.getTime() ?? null));
        if (patch.rateLimitPolicy !== undefined) (sets.push('rate_limit_policy = ?'), values.push(patch.rateLimitPolicy));
        if (patch.quota !== undefined) (sets.push('quota_limit = ?', 'quota_soft_limit = ?'), values.push(patch.quota?.limit ?? null, patch.quota?.softLimit ?? null));
        sets.push('updated_at = ?');
        values.push(now.getTime(), id);
        const res = sql(`UPDATE api_keys SET ${sets.join(', ')} WHERE id = ?`).run(...values);
        return res.changes === 0 ? null : get(id);
      });
    },
    async revoke(id, now) {
      return guard(() => {
        sql('UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?), updated_at = ? WHERE id = ?').run(now.getTime(), now.getTime(), id);
        return get(id);
      });
    },
    async rotate(r) {
      return guard(() => rotateTx.immediate(r.id, r.prefix, r.secretHash, r.previousExpiresAt.getTime(), r.now.getTime()));
    },
  };
}
