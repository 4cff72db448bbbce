import { typeMatches } from '../core/eventTypes.ts';
import { nextRetryDelayMs } from '../core/retrySchedule.ts';
import { ID_PREFIX, newId } from '../core/ids.ts';
import type { Announcement, EndpointRecord, NewDelivery } from '../storage/deliveryStore.ts';
import type { EventRecord, Store } from '../storage/store.ts';
import type { ProcessStep } from '../queue/worker.ts';
import type { Wakeup } from '../queue/wakeup.ts';

/** Event types Portcullis itself publishes (an endpoint disabled, …): only endpoints asking for them by name or `portcullis.*` get them. */
export const OPERATIONAL_PREFIX = 'portcullis.';

/** Whether an endpoint takes an event of this type (from this source; messages have none). */
export function endpointWants(endpoint: EndpointRecord, type: string, sourceId: string | null): boolean {
  if (!endpoint.enabled) return false;
  if (sourceId !== null && endpoint.sourceIds.length > 0 && !endpoint.sourceIds.includes(sourceId)) return false;
  // Operational events go only where they were asked for explicitly, never to catch-all endpoints.
  if (type.startsWith(OPERATIONAL_PREFIX)) return endpoint.eventTypes.length > 0 && typeMatches(endpoint.eventTypes, type);
  return typeMatches(endpoint.eventTypes, type);
}

/** One delivery per matching endpoint, due after the first delay of its schedule (the endpoint's, or `schedule`). */
export function deliveriesFor(
  endpoints: readonly EndpointRecord[],
  subject: { kind: 'message' | 'event'; id: string; type: string; sourceId: string | null },
  causeId: string,
  now: Date,
  schedule: readonly number[],
): NewDelivery[] {
  return endpoints
    .filter((e) => endpointWants(e, subject.type, subject.sourceId))
    .map((e) => {
      const firstDelayMs = nextRetryDelayMs(e.retrySchedule ?? schedule, 0) ?? 0;
      const nextAttemptAt = firstDelayMs === 0 ? now : new Date(now.getTime() + firstDelayMs);
      return { id: newId(ID_PREFIX.delivery), endpointId: e.id, subjectKind: subject.kind, subjectId: subject.id, causeId, eventType: subject.type, nextAttemptAt };
    });
}

/** How long the router trusts its list of endpoints (changes through this process's API clear it at once). */
export const ENDPOINT_LIST_TTL_MS = 1000;

export interface Router {
  /**
   * A message (the API's, or an operational one) and its deliveries, to be stored
   * in one transaction with whatever else must be (an Idempotency-Key's outcome,
   * an endpoint's disabling); then `queued` wakes this process's dispatcher.
   */
  prepare(eventType: string, payload: Buffer, now: Date): Promise<Announcement>;
  queued(announcement: Announcement): void;
  /**
   * The processing step that routes an inbound event to the endpoints that want
   * it. Its cause is the processing job, so a retried job routes nothing twice
   * while a replay (a new job) delivers again.
   */
  routeStep: ProcessStep;
  /** One endpoint, from the same short-lived list (read from the store when the list does not have it enabled). */
  endpoint(id: string): Promise<EndpointRecord | null>;
  /** Endpoints were created, changed or deleted here: read them again, and tell the other processes. */
  endpointsChanged(): void;
  /** Read endpoints again (a failure streak changed here, or another process changed one). */
  forget(): void;
}

/** `retrySchedule`: the server's schedule, for endpoints without their own. */
export function createRouter(store: Store, clock: () => Date, queued: Wakeup, retrySchedule: readonly number[]): Router {
  // Routing reads every endpoint for every message and event; endpoints are few and change rarely.
  let cached: { endpoints: Promise<EndpointRecord[]>; until: number } | null = null;
  // Other processes drop their list when this one changes an endpoint (PostgreSQL; SQLite polls: within ENDPOINT_LIST_TTL_MS).
  store.signals.listen('endpoints', () => (cached = null));
  const endpoints = (): Promise<EndpointRecord[]> => {
    if (cached === null || cached.until <= Date.now()) {
      const read = store.endpoints.all();
      cached = { endpoints: read, until: Date.now() + ENDPOINT_LIST_TTL_MS };
      read.catch(() => (cached = null));
    }
    return cached.endpoints;
  };
  return {
    async prepare(eventType, payload, now) {
      const id = newId(ID_PREFIX.message);
      const deliveries = deliveriesFor(await endpoints(), { kind: 'message', id, type: eventType, sourceId: null }, id, now, retrySchedule);
      return { message: { id, eventType, payload, createdAt: now }, deliveries };
    },
    queued(announcement) {
      if (announcement.deliveries.length > 0) queued.notify();
    },
    routeStep: {
      name: 'route',
      async run(event: EventRecord, _signal, job) {
        const now = clock();
        const deliveries = deliveriesFor(await endpoints(), { kind: 'event', id: event.id, type: event.type, sourceId: event.sourceId }, job.id, now, retrySchedule);
        if (deliveries.length > 0 && (await store.deliveries.createMany(deliveries, now)) > 0) queued.notify();
      },
    },
    async endpoint(id) {
      const found = (await endpoints()).find((e) => e.id === id);
      // Missing or disabled in the list, yet asked for (a delivery was claimed for it): the list is stale.
      if (found?.enabled) return found;
      cached = null;
      return store.endpoints.get(id);
    },
    endpointsChanged() {
      cached = null;
      store.signals.send('endpoints');
    },
    forget() {
      cached = null;
    },
  };
}
