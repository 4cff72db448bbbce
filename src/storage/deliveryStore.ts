import type { Page } from '../core/cursor.ts';
import type { IdempotencyScope, ListOptions, StoredResponse } from './store.ts';

/** A subscriber's HTTP endpoint. */
export interface EndpointRecord {
  id: string;
  url: string;
  description: string;
  /** Exact types or `prefix.*`; empty for every type. */
  eventTypes: string[];
  /** Inbound sources whose events it receives; empty for every source. Messages ignore it. */
  sourceIds: string[];
  /** Sent with every delivery. */
  headers: Record<string, string>;
  /** Deliveries per second at most; null for no limit. */
  rateLimitPerSecond: number | null;
  timeoutMs: number;
  /** Seconds before each attempt; null for the server's schedule. */
  retrySchedule: number[] | null;
  enabled: boolean;
  /** Why it was disabled (`gone`: it answered 410; `failing`: it failed too long), null when enabled by hand or never disabled. */
  disabledReason: string | null;
  metadata: Record<string, unknown>;
  secretSealed: string;
  previousSecretSealed: string | null;
  previousSecretExpiresAt: Date | null;
  consecutiveFailures: number;
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export type NewEndpoint = Omit<EndpointRecord, 'previousSecretSealed' | 'previousSecretExpiresAt' | 'consecutiveFailures' | 'failingSince' | 'createdAt' | 'updatedAt' | 'disabledReason'> & {
  now: Date;
};

export type EndpointPatch = Partial<
  Pick<EndpointRecord, 'url' | 'description' | 'eventTypes' | 'sourceIds' | 'rateLimitPerSecond' | 'timeoutMs' | 'retrySchedule' | 'enabled' | 'metadata'> & {
    /** Changes to its headers (values as stored), merged in the same statement as JSON Merge Patch does: null removes one, others are kept. */
    headers: Record<string, string | null>;
  }
>;

export interface EndpointRotation {
  id: string;
  secretSealed: string;
  previousSecretSealed: string | null;
  previousExpiresAt: Date | null;
  now: Date;
}

export interface EndpointStore {
  create(endpoint: NewEndpoint): Promise<EndpointRecord>;
  get(id: string): Promise<EndpointRecord | null>;
  list(options: ListOptions): Promise<Page<EndpointRecord>>;
  /** Enabling by hand clears the disabled reason and the failure streak. */
  update(id: string, patch: EndpointPatch, now: Date): Promise<EndpointRecord | null>;
  rotateSecret(rotation: EndpointRotation): Promise<EndpointRecord | null>;
  /** Its pending deliveries are dead-lettered (`endpoint deleted`) in the same transaction. */
  delete(id: string, now: Date): Promise<boolean>;
  /** Every endpoint, enabled or not (the router filters; endpoints are few). */
  all(): Promise<EndpointRecord[]>;
  /** After an attempt: a success ends the failure streak, a failure extends it (from `now` if it starts). */
  recordResult(id: string, ok: boolean, now: Date): Promise<{ consecutiveFailures: number; failingSince: Date | null } | null>;
  /**
   * Disables it with a reason; true only for the call that disabled it. The
   * announcement (a message and its deliveries) is stored in the same
   * transaction, and only by that call: never lost, never twice.
   */
  disable(id: string, reason: string, now: Date, announcement: Announcement): Promise<boolean>;
}

/** An Idempotency-Key claim and the response that completes it. */
export interface CompletedRequest {
  scope: IdempotencyScope;
  response: StoredResponse;
}

/** A message with its deliveries, stored together. */
export interface Announcement {
  message: MessageRecord;
  deliveries: NewDelivery[];
}

export interface MessageRecord {
  id: string;
  eventType: string;
  payload: Buffer;
  createdAt: Date;
}

export type DeliveryStatus = 'pending' | 'sending' | 'succeeded' | 'dead';

/** A delivery to create: to one endpoint, of a message or an inbound event. */
export interface NewDelivery {
  id: string;
  endpointId: string;
  subjectKind: 'message' | 'event';
  subjectId: string;
  /** What routed it: the message, or the processing job that routed an event (routing the same job twice adds nothing). */
  causeId: string;
  eventType: string;
  nextAttemptAt: Date;
}

export interface DeliveryRecord {
  id: string;
  endpointId: string;
  subjectKind: 'message' | 'event';
  subjectId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface DeliveryAttempt {
  attempt: number;
  startedAt: Date;
  finishedAt: Date;
  statusCode: number | null;
  latencyMs: number;
  responseBody: string | null;
  error: string | null;
  outcome: 'succeeded' | 'retry' | 'dead';
}

export interface MessageStore {
  /** The message and its deliveries, in one transaction. */
  /** With `idempotency`, the request's Idempotency-Key claim is completed in the same transaction: a repeat finds the message, whatever happens after the commit. */
  create(message: MessageRecord, deliveries: NewDelivery[], idempotency?: CompletedRequest): Promise<void>;
  get(id: string): Promise<MessageRecord | null>;
  list(filter: { eventType: string | null }, options: ListOptions): Promise<Page<MessageRecord>>;
}

/** A delivery a dispatcher holds while it attempts it. */
export interface ClaimedDelivery {
  id: string;
  endpointId: string;
  subjectKind: 'message' | 'event';
  subjectId: string;
  eventType: string;
  /** This attempt's number overall, from 1. */
  attempt: number;
  /** This attempt's number since the delivery was (re)queued: its place in the retry schedule. */
  roundAttempt: number;
  leaseToken: string;
  createdAt: Date;
  /** A message's payload, when the claim read it with the delivery (saves a read per attempt). */
  payload?: Buffer;
}

export type DeliveryOutcome =
  | { kind: 'succeeded' }
  | { kind: 'retry'; nextAttemptAt: Date; error: string }
  | { kind: 'dead'; error: string }
  /** Not attempted (the endpoint is over its rate or its concurrency): back in the queue, uncounted. */
  | { kind: 'postponed'; nextAttemptAt: Date };

export interface DeliveryFilter {
  endpointId: string | null;
  subjectId: string | null;
  status: DeliveryStatus | null;
  from: Date | null;
  to: Date | null;
}

export interface DeliveryStore {
  /** Routes an inbound event: deliveries already made for the same cause are not made again. */
  createMany(deliveries: NewDelivery[], now: Date): Promise<number>;
  /**
   * Leases up to `limit` due deliveries (or whose lease ran out) of enabled
   * endpoints, never of `skipEndpoints`; concurrent claimers never get the same
   * one. Deliveries of deleted endpoints are claimed too: the caller dead-letters them.
   */
  claim(options: { limit: number; leaseMs: number; now: Date; skipEndpoints: readonly string[] }): Promise<ClaimedDelivery[]>;
  /** A delivery made at once, outside the queue (an endpoint's test): stored finished (succeeded or dead), with its one attempt. */
  recordSent(delivery: NewDelivery, attempt: DeliveryAttempt, now: Date): Promise<void>;
  /** Records the attempt (unless postponed) and the outcome; false when the lease was lost. */
  finish(delivery: ClaimedDelivery, outcome: DeliveryOutcome, attempt: DeliveryAttempt | null, now: Date): Promise<boolean>;
  get(id: string): Promise<DeliveryRecord | null>;
  attempts(id: string): Promise<DeliveryAttempt[]>;
  list(filter: DeliveryFilter, options: ListOptions): Promise<Page<DeliveryRecord>>;
  /** Queues deliveries again now, with a fresh retry schedule; returns how many (at most `limit`). */
  retry(filter: DeliveryFilter & { ids: string[] | null }, limit: number, now: Date): Promise<number>;
}
