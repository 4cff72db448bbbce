import type { SourceType } from './verify/index.ts';

/** Providers whose event names go under their own namespace: `github.push`, `stripe.invoice.paid`. */
const NAMESPACED: ReadonlySet<string> = new Set(['github', 'huggingface', 'stripe', 'shopify', 'slack']);

/**
 * The stored event type: the provider's own name under the provider's namespace,
 * so one filter (`github.*`) selects a platform and two platforms' `invoice.paid`
 * never meet. Standard Webhooks and generic senders name their own types, which
 * are kept as sent.
 */
export function eventType(sourceType: SourceType, providerType: string): string {
  return NAMESPACED.has(sourceType) ? `${sourceType}.${providerType}` : providerType;
}
