import type { Page } from '../core/cursor.ts';
import type { DeliveryStore, EndpointStore, MessageStore } from './deliveryStore.ts';

/**
 * Store contract. Glossary:
 * - *key*: an API key record; its secret is never stored, only HMAC hashes of it.
 * - *secret hash*: one accepted secret of a key. A key has one current secret and,
 *   after a rotation with a grace period, the previous one until it expires.
 * - *idempotency record*: the first outcome of a POST with an Idempotency-Key.
 * - *usage*: requests and cost units per key, route and UTC day — the metering ledger.
 *
 * Times cross this interface as `Date`. Every method may throw `StoreUnavailableError`
 * when the engine cannot be reached; callers map it to 503.
 */

export interface ApiKeyRecord {
  id: string;
  name: string;
  customer: string | null;
  metadata: Record<string, unknown>;
  scopes: string[];
  /** `pcl_` + the first 8 characters of the current secret, for display. */
  prefix: string;
  createdBy: string | null;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  rotatedAt: Date | null;
  /** A rate-limit policy named in the configuration; null for the configured default. */
  rateLimitPolicy: string | null;
  /** Cost units the key may use per calendar month (UTC), and where a warning starts; null: unlimited. */
  quota: KeyQuota | null;
}

export interface KeyQuota {
  limit: number;
  softLimit: number | null;
}

export interface NewApiKey {
  id: string;
  name: string;
  customer: string | null;
  metadata: Record<string, unknown>;
  scopes: string[];
  prefix: string;
  secretHash: string;
  createdBy: string | null;
  expiresAt: Date | null;
  rateLimitPolicy: string | null;
  quota: KeyQuota | null;
  now: Date;
}

export interface ApiKeyPatch {
  name?: string;
  customer?: string | null;
  metadata?: Record<string, unknown>;
  scopes?: string[];
  expiresAt?: Date | null;
  rateLimitPolicy?: string | null;
  quota?: KeyQuota | null;
}

export interface KeyRotation {
  id: string;
  prefix: string;
  secretHash: string;
  /** When the secrets accepted so far stop working (now, for no grace). */
  previousExpiresAt: Date;
  now: Date;
}

export interface ListOptions {
  limit: number;
  /** Opaque cursor from a previous page; the store decides its content. */
  cursor: string | null;
}

export interface KeyStore {
  create(key: NewApiKey): Promise<ApiKeyRecord>;
  /**
   * Creates the first admin key, once per store: marks the store bootstrapped,
   * records `facts` in the store's meta table and inserts the key, in one
   * transaction. Returns null if the store was bootstrapped before.
   */
  bootstrap(key: NewApiKey, facts: Record<string, string>): Promise<ApiKeyRecord | null>;
  /** The key holding this secret hash, and when that secret stops being accepted. */
  findBySecretHash(hash: string): Promise<{ key: ApiKeyRecord; secretExpiresAt: Date | null } | null>;
  get(id: string): Promise<ApiKeyRecord | null>;
  /** Throws `InvalidCursorError` for a cursor this store did not write. */
  list(options: ListOptions): Promise<Page<ApiKeyRecord>>;
  update(id: string, patch: ApiKeyPatch, now: Date): Promise<ApiKeyRecord | null>;
  revoke(id: string, now: Date): Promise<ApiKeyRecord | null>;
  rotate(rotation: KeyRotation): Promise<ApiKeyRecord | null>;
}

export type IdempotencyScope = {
  /** The caller's API key id: keys never see each other's records. */
  keyId: string;
  idempotencyKey: string;
  method: string;
  path: string;
};

export interface StoredResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export type IdempotencyRecord =
  | { state: 'in-flight'; requestHash: string; startedAt: Date }
  | { state: 'completed'; requestHash: string; response: StoredResponse }
  /** The response carried a secret, so only the created resource's id is kept. */
  | { state: 'completed-secret'; requestHash: string; resourceId: string | null };

/** What a completed request leaves: its response, or (when that carried a secret) only the created resource's id. */
export type IdempotencyOutcome = { response: StoredResponse } | { resourceId: string | null };

export interface IdempotencyStore {
  /**
   * Claims the scope for a new request. Returns null when claimed, otherwise the
   * existing record. An in-flight record older than `staleBefore` (its process
   * died) or a record older than `expiredBefore` is taken over.
   */
  begin(
    scope: IdempotencyScope,
    requestHash: string,
    now: Date,
    staleBefore: Date,
    expiredBefore: Date,
  ): Promise<IdempotencyRecord | null>;
  complete(scope: IdempotencyScope, outcome: IdempotencyOutcome): Promise<void>;
  /** Forgets an in-flight claim whose request failed, so a retry runs again. */
  release(scope: IdempotencyScope): Promise<void>;
  deleteExpired(before: Date): Promise<number>;
}

/** An inbound endpoint `POST /in/{id or slug}`. Its secrets are stored sealed (encrypted). */
export interface SourceRecord {
  id: string;
  slug: string | null;
  name: string;
  type: string;
  /** The current secret, sealed; during a rotation's grace period also the previous one. */
  secretSealed: string;
  previousSecretSealed: string | null;
  previousSecretExpiresAt: Date | null;
  dedupWindowSeconds: number;
  bodyLimit: number;
  rateLimitPolicy: string | null;
  rateLimitMode: 'reject' | 'throttle';
  /** Settings of a generic HMAC source; null for the named providers. */
  generic: Record<string, unknown> | null;
  metadata: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

export type NewSource = Omit<SourceRecord, 'previousSecretSealed' | 'previousSecretExpiresAt' | 'createdAt' | 'updatedAt'> & { now: Date };

export type SourcePatch = Partial<Pick<SourceRecord, 'slug' | 'name' | 'dedupWindowSeconds' | 'bodyLimit' | 'rateLimitPolicy' | 'rateLimitMode' | 'generic' | 'metadata'>>;

export interface SourceRotation {
  id: string;
  secretSealed: string;
  /** The secret being replaced, sealed, kept until `previousExpiresAt` (null: dropped now). */
  previousSecretSealed: string | null;
  previousExpiresAt: Date | null;
  now: Date;
}

/** A slug already taken by another source. */
export class SlugTakenError extends Error {
  constructor() {
    super('slug taken');
    this.name = 'SlugTakenError';
  }
}

export interface SourceStore {
  /** Throws SlugTakenError when the slug is in use. */
  create(source: NewSource): Promise<SourceRecord>;
  /** By id (`src_…`) or slug. */
  find(idOrSlug: string): Promise<SourceRecord | null>;
  list(options: ListOptions): Promise<Page<SourceRecord>>;
  /** Throws SlugTakenError when the new slug is in use. */
  update(id: string, patch: SourcePatch, now: Date): Promise<SourceRecord | null>;
  rotateSecret(rotation: SourceRotation): Promise<SourceRecord | null>;
  delete(id: string): Promise<boolean>;
}

/** A verified inbound delivery, as it is stored before it is acknowledged. */
export interface NewEvent {
  id: string;
  sourceId: string;
  type: string;
  deliveryId: string | null;
  dedupKey: string;
  /** Headers kept with the event (the provider's own, for forwarding and debugging). */
  headers: Record<string, string>;
  body: Buffer;
  receivedAt: Date;
  /** Until when a delivery with the same dedup key is a duplicate. */
  dedupUntil: Date;
  /** Processing jobs committed with the event, in the same transaction. */
  jobs: { id: string; kind: string }[];
}

export type EventStatus = 'pending' | 'processed' | 'dead';

export interface EventRecord {
  id: string;
  sourceId: string;
  type: string;
  deliveryId: string | null;
  dedupKey: string;
  headers: Record<string, string>;
  /** Null in lists, and once retention has deleted it. */
  body: Buffer | null;
  receivedAt: Date;
  status: EventStatus;
}

export interface JobHistory {
  id: string;
  kind: string;
  status: string;
  attempts: { attempt: number; startedAt: Date; finishedAt: Date; outcome: string; error: string | null }[];
  lastError: string | null;
  runAt: Date;
  createdAt: Date;
}

export interface EventFilter {
  sourceId: string | null;
  type: string | null;
  status: EventStatus | null;
  from: Date | null;
  to: Date | null;
}

export interface EventStore {
  get(id: string): Promise<EventRecord | null>;
  /** The event's jobs, oldest first, each with its attempts. */
  history(id: string): Promise<JobHistory[]>;
  /** Newest last (in arrival order), without bodies. */
  list(filter: EventFilter, options: ListOptions): Promise<Page<EventRecord>>;
  /** Queues the event for processing again (a new job); false when there is no such event. */
  replay(id: string, jobId: string, now: Date): Promise<boolean>;
  /** Replays every event the filter matches (at most `limit`); returns how many. */
  replayMatching(filter: EventFilter, limit: number, newJobId: () => string, now: Date): Promise<number>;
  /**
   * Stores the event and its jobs in one durable transaction, unless a live
   * event with the same source and dedup key exists: then nothing is written
   * and that event's id is returned. Enforced by a unique constraint.
   */
  ingest(event: NewEvent): Promise<{ eventId: string; duplicate: boolean }>;
  /**
   * Calls `listener` after each durable commit of ingested events with how many
   * deliveries it carried (the ingest commit metrics): both adapters commit the
   * deliveries of concurrent requests together (groupCommit.ts).
   */
  onIngestCommit(listener: (deliveries: number) => void): void;
  /**
   * Retention: sets the body to NULL on up to `limit` events received before
   * `before` that are no longer pending (processed or dead), oldest first, in
   * one short transaction; returns how many. Headers and history are kept.
   */
  deleteBodiesBefore(before: Date, limit: number): Promise<number>;
  /** Deletes up to `limit` dedup records whose window ended at or before `now`; returns how many. */
  deleteExpiredDedup(now: Date, limit: number): Promise<number>;
}

/** A job a worker holds: it must finish it (done, retry, dead) while its lease lasts. */
export interface ClaimedJob {
  id: string;
  eventId: string;
  kind: string;
  /** This attempt's number, from 1. */
  attempt: number;
  leaseToken: string;
  claimedAt: Date;
}

export type JobOutcome = { outcome: 'done' } | { outcome: 'retry'; runAt: Date; error: string } | { outcome: 'dead'; error: string };

export interface JobStore {
  /**
   * Leases up to `limit` jobs that are ready and due, or whose previous lease
   * ran out (a crashed worker's). Concurrent claimers never get the same job
   * (`FOR UPDATE SKIP LOCKED` on PostgreSQL; the write lock on SQLite).
   */
  claim(options: { limit: number; leaseMs: number; now: Date }): Promise<ClaimedJob[]>;
  /** Records the attempt and its outcome; false when the lease was lost (another worker holds the job now). */
  finish(job: ClaimedJob, result: JobOutcome, now: Date): Promise<boolean>;
  /**
   * Gives the job back without counting the attempt (no attempt row, the
   * attempt number restored), due again at `runAt`: for a job held back by its
   * source's throttle. False when the lease was lost.
   */
  postpone(job: ClaimedJob, runAt: Date, now: Date): Promise<boolean>;
  /** Jobs ready or leased, and the age of the oldest due one, for the queue gauges. */
  depth(now: Date): Promise<{ ready: number; running: number; dead: number; oldestDueMs: number | null }>;
}

/** A named reader of the event stream (as Redis Streams consumer groups are). */
export interface ConsumerGroupRecord {
  id: string;
  name: string;
  /** Only this source's events; null for all sources. */
  sourceId: string | null;
  /** Event types, exact or `prefix.*`; empty for every type. */
  types: string[];
  /** Events received before this time are skipped (a group started "now" starts at its creation). */
  startAt: Date;
  visibilityTimeoutMs: number;
  createdAt: Date;
}

export interface NewConsumerGroup {
  id: string;
  name: string;
  sourceId: string | null;
  types: string[];
  /**
   * `now`: past the newest event readable now, and received from now on (on
   * PostgreSQL an event committed just before may not be readable yet); a time:
   * events received from then on.
   */
  start: 'now' | Date;
  visibilityTimeoutMs: number;
  now: Date;
}

/** An event handed to a consumer: it is hidden from the group until `visibleAt`, unless acknowledged. */
export interface LeasedEvent {
  /** Proof of this lease for ack and nack: a later lease of the same event has another one. */
  receipt: string;
  /** How many times the group has handed this event out, this time included. */
  deliveries: number;
  visibleAt: Date;
  event: EventRecord;
}

export interface LeaseRequest {
  max: number;
  /** Stop adding events once their bodies pass this many bytes (at least one is always handed out). */
  maxBytes: number;
  visibilityMs: number;
  now: Date;
}

export interface ConsumerGroupStore {
  /** Throws NameTakenError when the name is in use. */
  create(group: NewConsumerGroup): Promise<ConsumerGroupRecord>;
  /** By id (`cgr_…`) or name. */
  find(idOrName: string): Promise<ConsumerGroupRecord | null>;
  list(options: ListOptions): Promise<Page<ConsumerGroupRecord>>;
  delete(id: string): Promise<boolean>;
  /**
   * Hands out up to `max` events: first those whose lease ran out or that were
   * nacked (oldest first), then new ones past the group's cursor that match its
   * filters. Concurrent leases of one group never get the same event.
   */
  lease(groupId: string, request: LeaseRequest): Promise<LeasedEvent[]>;
  /** Forgets the leased events for good; returns the receipts that were current (stale ones are ignored). */
  ack(groupId: string, receipts: string[]): Promise<string[]>;
  /** Makes leased events visible again at `visibleAt`; returns the receipts that were current. */
  nack(groupId: string, receipts: string[], visibleAt: Date): Promise<string[]>;
  /** Events handed out and not acknowledged, and how many of them are leased right now. */
  pending(groupId: string, now: Date): Promise<{ pending: number; leased: number }>;
}

export class NameTakenError extends Error {
  constructor() {
    super('name taken');
    this.name = 'NameTakenError';
  }
}

/** Requests and units to add to one key's, route's and day's count. */
export interface UsageDelta {
  keyId: string;
  /** `METHOD /route/template`. */
  route: string;
  /** UTC day, `YYYY-MM-DD`. */
  day: string;
  requests: number;
  units: number;
}

export interface UsageRow {
  keyId: string;
  route: string;
  /** `YYYY-MM-DD` or `YYYY-MM`, by granularity. */
  period: string;
  requests: number;
  units: number;
}

export interface UsageQuery {
  keyId: string | null;
  route: string | null;
  /** First and last UTC day included, `YYYY-MM-DD`. */
  fromDay: string;
  toDay: string;
  granularity: 'day' | 'month';
  limit: number;
  cursor: string | null;
}

export interface UsageStore {
  /**
   * Adds a batch of deltas in one transaction, once: a batch id recorded before
   * (a retry after an unknown outcome) adds nothing and returns false.
   */
  record(batchId: string, deltas: UsageDelta[], now: Date): Promise<boolean>;
  /** Units one key used from `fromDay` to `toDay`, inclusive. */
  units(keyId: string, fromDay: string, toDay: string): Promise<number>;
  /** Ordered by period, key id, route. Throws `InvalidCursorError` for a foreign cursor. */
  query(query: UsageQuery): Promise<Page<UsageRow>>;
  /** Forgets batch ids recorded before `before` (retries never come that late). */
  deleteBatchesBefore(before: Date): Promise<number>;
}

/** Facts set once per store (`bootstrapped_at`, `secret_check`). */
export interface MetaStore {
  get(name: string): Promise<string | null>;
}

/**
 * What a signal announces: new inbound events, new deliveries (or ones due
 * again), or a change to endpoints, sources or API keys (caches of them drop it).
 */
export type SignalTopic = 'events' | 'deliveries' | 'endpoints' | 'sources' | 'keys';

/**
 * Hints between the processes sharing a store that something new was written,
 * so their waiting readers look at once instead of at their next poll. Best
 * effort: a reader polls anyway. PostgreSQL: LISTEN/NOTIFY; SQLite: none.
 */
export interface StoreSignals {
  /** Tells the other processes, after the write committed; coalesced. */
  send(topic: SignalTopic): void;
  /** Runs `handler` when another process sends `topic` (and after a lost connection is back: one may have been missed). */
  listen(topic: SignalTopic, handler: () => void): void;
  close(): Promise<void>;
}

export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  readonly keys: KeyStore;
  readonly idempotency: IdempotencyStore;
  readonly usage: UsageStore;
  readonly sources: SourceStore;
  readonly events: EventStore;
  readonly jobs: JobStore;
  readonly consumerGroups: ConsumerGroupStore;
  readonly endpoints: EndpointStore;
  readonly messages: MessageStore;
  readonly deliveries: DeliveryStore;
  readonly meta: MetaStore;
  readonly signals: StoreSignals;
  /** Applies pending migrations; returns how many were applied. */
  migrate(): Promise<number>;
  /** Reachable and fully migrated. */
  check(): Promise<{ reachable: boolean; migrated: boolean; detail?: string }>;
  close(): Promise<void>;
}

export class StoreUnavailableError extends Error {
  constructor(cause: unknown) {
    super('store unavailable', { cause });
    this.name = 'StoreUnavailableError';
  }
}

export class InvalidCursorError extends Error {
  constructor() {
    super('invalid cursor');
    this.name = 'InvalidCursorError';
  }
}
