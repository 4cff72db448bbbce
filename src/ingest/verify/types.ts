/** What a provider verifier sees: lower-case header names and the exact bytes received. */
export interface InboundRequest {
  headers: Readonly<Record<string, string | undefined>>;
  body: Buffer;
}

export interface VerifyContext {
  /** Every secret currently valid for the source (two during a rotation's grace period). */
  secrets: readonly string[];
  now: Date;
}

export type RejectReason = 'missing-signature' | 'bad-signature' | 'stale-timestamp' | 'malformed-body';

export type Verdict =
  | {
      ok: true;
      /** The provider's own event type, dot-separated (`pull_request.opened`); the source adds its prefix. */
      type: string;
      /** The provider's delivery id, when it sends one. */
      deliveryId: string | null;
      /** What duplicates share: the delivery id, else a hash of the body. */
      dedupKey: string;
      /** A body to answer with instead of the usual acknowledgement (Slack's url_verification). */
      reply?: { contentType: string; body: string };
    }
  | { ok: false; reason: RejectReason; detail: string };

export type Verifier = (request: InboundRequest, context: VerifyContext) => Verdict;

export const reject = (reason: RejectReason, detail: string): Verdict => ({ ok: false, reason, detail });
