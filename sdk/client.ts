/**
 * Typed client for the Portcullis HTTP API. The CLI is built on it, and later
 * resources extend it. Request and response types come from the route schemas.
 */
import type {
  ApiKey,
  ApiKeyList,
  ApiKeyWithSecret,
  CreateKeyRequest,
  RotateKeyRequest,
  UpdateKeyRequest,
  VerifyKeyRequest,
  VerifyKeyResponse,
} from '../src/http/schemas/keys.ts';

import type { UsageListQuery, UsageListResponse } from '../src/http/schemas/usage.ts';
import type { CreateMessageRequest, CreatedMessageResponse, MessageDetailResponse, MessageListQuery, MessageListResponse } from '../src/http/schemas/messages.ts';
import type { AttemptResponse, BulkRetryRequest, TestAttemptResponse, DeliveryDetailResponse, DeliveryListQuery, DeliveryListResponse, RecoverRequest, RetryResponse } from '../src/http/schemas/deliveries.ts';
import type {
  ConsumerGroupDetailResponse,
  ConsumerGroupListResponse,
  ConsumerGroupResponse,
  CreateConsumerGroupRequest,
  LeaseOptions,
  LeaseResponse,
  NackRequest,
  SettleResponse,
} from '../src/http/schemas/consumerGroups.ts';
import type { BulkReplayRequest, BulkReplayResponse, EventDetailResponse, EventListQuery, EventListResponse, ReplayResponse } from '../src/http/schemas/events.ts';
import type {
  CreateSourceRequest,
  RevealedSecretResponse,
  RotateSourceSecretRequest,
  SourceListResponse,
  SourceResponse,
  SourceWithSecretResponse,
  UpdateSourceRequest,
} from '../src/http/schemas/sources.ts';
import type {
  CreateEndpointRequest,
  EndpointListResponse,
  EndpointResponse,
  EndpointWithSecretResponse,
  RevealedEndpointSecretResponse,
  RotateEndpointSecretRequest,
  UpdateEndpointRequest,
} from '../src/http/schemas/endpoints.ts';

export type { ApiKey, ApiKeyList, ApiKeyWithSecret, CreateKeyRequest, RotateKeyRequest, UpdateKeyRequest, UsageListResponse, VerifyKeyRequest, VerifyKeyResponse };
export type UsageOptions = Partial<UsageListQuery>;
export type EventOptions = Partial<EventListQuery>;
export type { AttemptResponse, TestAttemptResponse, CreateMessageRequest, CreatedMessageResponse, MessageDetailResponse, MessageListResponse, BulkRetryRequest, DeliveryDetailResponse, DeliveryListResponse, RecoverRequest, RetryResponse };
export type MessageOptions = Partial<MessageListQuery>;
export type DeliveryOptions = Partial<DeliveryListQuery>;
export type { ConsumerGroupDetailResponse, ConsumerGroupListResponse, ConsumerGroupResponse, CreateConsumerGroupRequest, LeaseOptions, LeaseResponse, NackRequest, SettleResponse };
export type { BulkReplayRequest, BulkReplayResponse, EventDetailResponse, EventListResponse, ReplayResponse };
export type { CreateSourceRequest, RevealedSecretResponse, RotateSourceSecretRequest, SourceListResponse, SourceResponse, SourceWithSecretResponse, UpdateSourceRequest };
export type { CreateEndpointRequest, EndpointListResponse, EndpointResponse, EndpointWithSecretResponse, RevealedEndpointSecretResponse, RotateEndpointSecretRequest, UpdateEndpointRequest };

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  [extension: string]: unknown;
}

/** A non-2xx answer. `problem` is the server's RFC 9457 body when it sent one. */
export class PortcullisError extends Error {
  readonly status: number;
  readonly problem: Problem | null;
  constructor(status: number, problem: Problem | null, fallback: string) {
    super(problem ? `${problem.title}: ${problem.detail}` : fallback);
    this.name = 'PortcullisError';
    this.status = status;
    this.problem = problem;
  }
}

export interface ClientOptions {
  /** e.g. `http://127.0.0.1:8080` */
  baseUrl: string;
  apiKey?: string;
  /** Per-request timeout in milliseconds (default 30 000). */
  timeoutMs?: number;
}

export interface RequestOptions {
  idempotencyKey?: string;
  /** This request's timeout in milliseconds, instead of the client's. */
  timeoutMs?: number;
}

export interface ListOptions {
  limit?: number;
  cursor?: string;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export class PortcullisClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs ?? this.#timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) {
      let problem: Problem | null = null;
      try {
        const parsed = JSON.parse(text) as Problem;
        if (parsed && typeof parsed.code === 'string') problem = parsed;
      } catch {
        // not a problem document
      }
      throw new PortcullisError(res.status, problem, `HTTP ${res.status}`);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  readonly keys = {
    create: (body: CreateKeyRequest, options?: RequestOptions): Promise<ApiKeyWithSecret> => this.request('POST', '/v1/keys', body, options),
    list: (options: ListOptions = {}): Promise<ApiKeyList> => this.request('GET', `/v1/keys${query(options)}`),
    get: (id: string): Promise<ApiKey> => this.request('GET', `/v1/keys/${encodeURIComponent(id)}`),
    update: (id: string, body: UpdateKeyRequest): Promise<ApiKey> => this.request('PATCH', `/v1/keys/${encodeURIComponent(id)}`, body),
    revoke: (id: string, options?: RequestOptions): Promise<ApiKey> => this.request('POST', `/v1/keys/${encodeURIComponent(id)}/revoke`, undefined, options),
    rotate: (id: string, body: RotateKeyRequest = {}, options?: RequestOptions): Promise<ApiKeyWithSecret> =>
      this.request('POST', `/v1/keys/${encodeURIComponent(id)}/rotate`, body, options),
    verify: (body: VerifyKeyRequest, options?: RequestOptions): Promise<VerifyKeyResponse> => this.request('POST', '/v1/keys/verify', body, options),
  };

  readonly sources = {
    create: (body: CreateSourceRequest, options?: RequestOptions): Promise<SourceWithSecretResponse> => this.request('POST', '/v1/sources', body, options),
    list: (options: ListOptions = {}): Promise<SourceListResponse> => this.request('GET', `/v1/sources${query(options)}`),
    get: (id: string): Promise<SourceResponse> => this.request('GET', `/v1/sources/${encodeURIComponent(id)}`),
    update: (id: string, body: UpdateSourceRequest): Promise<SourceResponse> => this.request('PATCH', `/v1/sources/${encodeURIComponent(id)}`, body),
    delete: (id: string): Promise<void> => this.request('DELETE', `/v1/sources/${encodeURIComponent(id)}`),
    revealSecret: (id: string): Promise<RevealedSecretResponse> => this.request('POST', `/v1/sources/${encodeURIComponent(id)}/reveal-secret`),
    rotateSecret: (id: string, body: RotateSourceSecretRequest = {}, options?: RequestOptions): Promise<SourceWithSecretResponse> =>
      this.request('POST', `/v1/sources/${encodeURIComponent(id)}/rotate-secret`, body, options),
  };

  readonly endpoints = {
    create: (body: CreateEndpointRequest, options?: RequestOptions): Promise<EndpointWithSecretResponse> => this.request('POST', '/v1/endpoints', body, options),
    list: (options: ListOptions = {}): Promise<EndpointListResponse> => this.request('GET', `/v1/endpoints${query(options)}`),
    get: (id: string): Promise<EndpointResponse> => this.request('GET', `/v1/endpoints/${encodeURIComponent(id)}`),
    update: (id: string, body: UpdateEndpointRequest): Promise<EndpointResponse> => this.request('PATCH', `/v1/endpoints/${encodeURIComponent(id)}`, body),
    delete: (id: string): Promise<void> => this.request('DELETE', `/v1/endpoints/${encodeURIComponent(id)}`),
    revealSecret: (id: string): Promise<RevealedEndpointSecretResponse> => this.request('POST', `/v1/endpoints/${encodeURIComponent(id)}/reveal-secret`),
    /** Without a grace period given, the previous secret keeps signing beside the new one for 24 h. */
    rotateSecret: (id: string, body: RotateEndpointSecretRequest = {}, options?: RequestOptions): Promise<EndpointWithSecretResponse> =>
      this.request('POST', `/v1/endpoints/${encodeURIComponent(id)}/rotate-secret`, body, options),
    /** Re-sends every dead delivery of the endpoint since a time. */
    recover: (id: string, body: RecoverRequest, options?: RequestOptions): Promise<RetryResponse> => this.request('POST', `/v1/endpoints/${encodeURIComponent(id)}/recover`, body, options),
    /** Sends a signed test event now and answers with the attempt, and the message and delivery it is stored as. */
    test: (id: string): Promise<TestAttemptResponse> => this.request('POST', `/v1/endpoints/${encodeURIComponent(id)}/test`),
  };

  readonly events = {
    list: (options: EventOptions = {}): Promise<EventListResponse> => this.request('GET', `/v1/events${query(options)}`),
    get: (id: string): Promise<EventDetailResponse> => this.request('GET', `/v1/events/${encodeURIComponent(id)}`),
    replay: (id: string, options?: RequestOptions): Promise<ReplayResponse> => this.request('POST', `/v1/events/${encodeURIComponent(id)}/replay`, undefined, options),
    replayMatching: (filter: BulkReplayRequest, options?: RequestOptions): Promise<BulkReplayResponse> => this.request('POST', '/v1/events/replay', filter, options),
  };

  readonly usage = {
    list: (options: UsageOptions = {}): Promise<UsageListResponse> => this.request('GET', `/v1/usage${query(options)}`),
  };

  /** Every item of a list, following cursors. */
  readonly consumerGroups = {
    create: (body: CreateConsumerGroupRequest, options?: RequestOptions): Promise<ConsumerGroupResponse> => this.request('POST', '/v1/consumer-groups', body, options),
    list: (options: ListOptions = {}): Promise<ConsumerGroupListResponse> => this.request('GET', `/v1/consumer-groups${query(options)}`),
    get: (idOrName: string): Promise<ConsumerGroupDetailResponse> => this.request('GET', `/v1/consumer-groups/${encodeURIComponent(idOrName)}`),
    delete: (idOrName: string): Promise<void> => this.request('DELETE', `/v1/consumer-groups/${encodeURIComponent(idOrName)}`),
    /** With `wait`, a long poll: the request's timeout grows by the wait. */
    lease: (idOrName: string, options: LeaseOptions = {}): Promise<LeaseResponse> =>
      this.request('POST', `/v1/consumer-groups/${encodeURIComponent(idOrName)}/lease${query(options)}`, undefined, { timeoutMs: this.#timeoutMs + (options.wait ?? 0) * 1000 }),
    ack: (idOrName: string, receipts: string[]): Promise<SettleResponse> => this.request('POST', `/v1/consumer-groups/${encodeURIComponent(idOrName)}/ack`, { receipts }),
    nack: (idOrName: string, body: NackRequest): Promise<SettleResponse> => this.request('POST', `/v1/consumer-groups/${encodeURIComponent(idOrName)}/nack`, body),
  };

  readonly messages = {
    create: (body: CreateMessageRequest, options?: RequestOptions): Promise<CreatedMessageResponse> => this.request('POST', '/v1/messages', body, options),
    list: (options: MessageOptions = {}): Promise<MessageListResponse> => this.request('GET', `/v1/messages${query(options)}`),
    get: (id: string): Promise<MessageDetailResponse> => this.request('GET', `/v1/messages/${encodeURIComponent(id)}`),
  };

  readonly deliveries = {
    list: (options: DeliveryOptions = {}): Promise<DeliveryListResponse> => this.request('GET', `/v1/deliveries${query(options)}`),
    get: (id: string): Promise<DeliveryDetailResponse> => this.request('GET', `/v1/deliveries/${encodeURIComponent(id)}`),
    retry: (id: string, options?: RequestOptions): Promise<RetryResponse> => this.request('POST', `/v1/deliveries/${encodeURIComponent(id)}/retry`, undefined, options),
    retryMatching: (filter: BulkRetryRequest, options?: RequestOptions): Promise<RetryResponse> => this.request('POST', '/v1/deliveries/retry', filter, options),
  };

  async *paginate<T>(list: (options: ListOptions) => Promise<{ data: T[]; nextCursor: string | null }>, limit = 250): AsyncGenerator<T> {
    let cursor: string | undefined;
    do {
      const page = await list({ limit, ...(cursor ? { cursor } : {}) });
      yield* page.data;
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
  }
}

function query(options: object): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(options) as [string, unknown][]) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}
