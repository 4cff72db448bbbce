import { genericHmacVerifier } from './generic.ts';
import type { GenericHmacOptions } from './generic.ts';
import { verifyGithub } from './github.ts';
import { verifyHuggingface } from './huggingface.ts';
import { verifyShopify } from './shopify.ts';
import { verifySlack } from './slack.ts';
import { verifyStandardWebhooks } from './standardWebhooks.ts';
import { verifyStripe } from './stripe.ts';
import type { Verifier } from './types.ts';

export const SOURCE_TYPES = ['github', 'huggingface', 'stripe', 'standard-webhooks', 'shopify', 'slack', 'generic'] as const;
export type SourceType = (typeof SOURCE_TYPES)[number];

const FIXED: Record<Exclude<SourceType, 'generic'>, Verifier> = {
  github: verifyGithub,
  huggingface: verifyHuggingface,
  stripe: verifyStripe,
  'standard-webhooks': verifyStandardWebhooks,
  shopify: verifyShopify,
  slack: verifySlack,
};

/** The verifier for a source of this type (`generic` takes its scheme from the source's settings). */
export function verifierFor(type: SourceType, generic?: GenericHmacOptions): Verifier {
  if (type !== 'generic') return FIXED[type];
  if (!generic) throw new Error('a generic source needs its HMAC settings');
  return genericHmacVerifier(generic);
}

export type { GenericHmacOptions } from './generic.ts';
export type { InboundRequest, Verdict, Verifier, VerifyContext } from './types.ts';
