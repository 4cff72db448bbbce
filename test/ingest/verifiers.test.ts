import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { sign as octokitSign } from '@octokit/webhooks-methods';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { verifierFor } from '../../src/ingest/verify/index.ts';
import type { InboundRequest, Verdict } from '../../src/ingest/verify/index.ts';
import { GENERIC_DEFAULTS } from '../../src/ingest/verify/generic.ts';

const NOW = new Date('2026-11-22T10:00:00Z');
const nowS = Math.floor(NOW.getTime() / 1000);

function request(headers: Record<string, string>, body: string | Buffer): InboundRequest {
  return { headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])), body: Buffer.isBuffer(body) ? body : Buffer.from(body) };
}

function ok(verdict: Verdict): Extract<Verdict, { ok: true }> {
  assert.ok(verdict.ok, `expected accepted, got ${JSON.stringify(verdict)}`);
  return verdict;
}

function refused(verdict: Verdict, reason: string): void {
  assert.equal(verdict.ok, false, 'expected refused');
  if (!verdict.ok) assert.equal(verdict.reason, reason);
}

const github = verifierFor('github');

test('GitHub: the documented vector and @octokit/webhooks-methods signatures verify; anything else is refused', async () => {
  // docs.github.com vector
  const docs = request({ 'X-Hub-Signature-256': 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17', 'X-GitHub-Event': 'ping', 'X-GitHub-Delivery': 'd-1' }, 'Hello, World!');
  // Not JSON: the signature passes, the body is refused as malformed, not as forged.
  refused(github(docs, { secrets: ["It's a Secret to Everybody"], now: NOW }), 'malformed-body');

  // @octokit/webhooks-methods vector and library signature
  const body = '{"foo":"bar"}';
  assert.equal(await octokitSign('mysecret', body), 'sha256=4864d2759938a15468b5df9ade20bf161da9b4f737ea61794142f3484236bda3');
  const payload = JSON.stringify({ action: 'opened', number: 1, pull_request: { title: 'naïve ✓' } });
  const headers = { 'X-Hub-Signature-256': await octokitSign('s3cret', payload), 'X-GitHub-Event': 'pull_request', 'X-GitHub-Delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958' };
  const v = ok(github(request(headers, payload), { secrets: ['s3cret'], now: NOW }));
  assert.deepEqual([v.type, v.deliveryId, v.dedupKey], ['pull_request.opened', '72d3162e-cc78-11e3-81ab-4c9367dc0958', '72d3162e-cc78-11e3-81ab-4c9367dc0958']);
  assert.equal(ok(github(request({ ...headers, 'X-Hub-Signature-256': await octokitSign('s3cret', '{"zen":"x"}'), 'X-GitHub-Event': 'ping' }, '{"zen":"x"}'), { secrets: ['s3cret'], now: NOW })).type, 'ping');

  // During a rotation either secret works.
  ok(github(request(headers, payload), { secrets: ['new-secret', 's3cret'], now: NOW }));

  refused(github(request({ ...headers, 'X-Hub-Signature-256': '' }, payload), { secrets: ['s3cret'], now: NOW }), 'missing-signature');
  refused(github(request(headers, payload), { secrets: ['wrong'], now: NOW }), 'bad-signature');
  refused(github(request(headers, `${payload} `), { secrets: ['s3cret'], now: NOW }), 'bad-signature');
  refused(github(request({ ...headers, 'X-Hub-Signature-256': headers['X-Hub-Signature-256'].slice(0, -2) }, payload), { secrets: ['s3cret'], now: NOW }), 'bad-signature');
  refused(github(request({ ...headers, 'X-Hub-Signature-256': headers['X-Hub-Signature-256'].replace('sha256=', 'sha1=') }, payload), { secrets: ['s3cret'], now: NOW }), 'bad-signature');
  refused(github(request({ ...headers, 'X-Hub-Signature-256': `sha256=${'zz'.repeat(32)}` }, payload), { secrets: ['s3cret'], now: NOW }), 'bad-signature');
  // Re-serialised JSON is different bytes: verification is over the raw body only.
  refused(github(request(headers, JSON.stringify(JSON.parse(payload), null, 2)), { secrets: ['s3cret'], now: NOW }), 'bad-signature');
});

test('GitHub: form-encoded deliveries verify over the raw form body', async () => {
  const json = JSON.stringify({ action: 'created', issue: { number: 3 } });
  const form = `payload=${encodeURIComponent(json)}`;
  const v = ok(
    github(request({ 'X-Hub-Signature-256': await octokitSign('k', form), 'X-GitHub-Event': 'issue_comment', 'content-type': 'application/x-www-form-urlencoded' }, form), { secrets: ['k'], now: NOW }),
  );
  assert.equal(v.type, 'issue_comment.created');
});

test('Hugging Face: the secret is compared as sent; type from event.scope and event.action; dedup on the content', () => {
  const hf = verifierFor('huggingface');
  const body = JSON.stringify({ event: { action: 'update', scope: 'repo.content' }, repo: { type: 'model', name: 'org/model' }, webhook: { id: 'w1', version: 3 } });
  const v = ok(hf(request({ 'X-Webhook-Secret': 'hf-secret' }, body), { secrets: ['hf-secret'], now: NOW }));
  assert.equal(v.type, 'repo.content.update');
  assert.equal(v.deliveryId, null);
  assert.match(v.dedupKey, /^sha256:[0-9a-f]{64}$/);
  assert.equal(ok(hf(request({ 'X-Webhook-Secret': 'hf-secret' }, body), { secrets: ['hf-secret'], now: NOW })).dedupKey, v.dedupKey);
  refused(hf(request({}, body), { secrets: ['hf-secret'], now: NOW }), 'missing-signature');
  refused(hf(request({ 'X-Webhook-Secret': 'hf-secreT' }, body), { secrets: ['hf-secret'], now: NOW }), 'bad-signature');
  refused(hf(request({ 'X-Webhook-Secret': 'hf-secret-longer' }, body), { secrets: ['hf-secret'], now: NOW }), 'bad-signature');
  refused(hf(request({ 'X-Webhook-Secret': 'hf-secret' }, '{"event":{}}'), { secrets: ['hf-secret'], now: NOW }), 'malformed-body');
});

test('Stripe: signatures from the stripe library verify, any v1 may match, and the timestamp is held to 300 s', () => {
  const stripe = new Stripe('sk_test_not_a_real_key');
  const verify = verifierFor('stripe');
  const secret = 'whsec_test_secret';
  const payload = JSON.stringify({ id: 'evt_1NG8Du2eZvKYlo2CUI79vXWy', object: 'event', type: 'payment_intent.succeeded', data: { object: {} } });
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: nowS - 10 });
  const v = ok(verify(request({ 'Stripe-Signature': header }, payload), { secrets: [secret], now: NOW }));
  assert.deepEqual([v.type, v.dedupKey], ['payment_intent.succeeded', 'evt_1NG8Du2eZvKYlo2CUI79vXWy']);
  // The stripe library agrees on what we accept.
  assert.equal(stripe.webhooks.constructEvent(payload, header, secret, 300, undefined, nowS).id, 'evt_1NG8Du2eZvKYlo2CUI79vXWy');

  const [t, v1] = header.split(',');
  ok(verify(request({ 'Stripe-Signature': `${t},v1=${'0'.repeat(64)},${v1},v0=abc` }, payload), { secrets: [secret], now: NOW }));
  refused(verify(request({ 'Stripe-Signature': `${t},v0=${v1!.slice(3)}` }, payload), { secrets: [secret], now: NOW }), 'missing-signature');
  refused(verify(request({ 'Stripe-Signature': header }, payload), { secrets: ['whsec_other'], now: NOW }), 'bad-signature');
  const stale = stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: nowS - 301 });
  refused(verify(request({ 'Stripe-Signature': stale }, payload), { secrets: [secret], now: NOW }), 'stale-timestamp');
  // A replay of an old, genuine delivery with a fresh t is a forgery: t is signed.
  refused(verify(request({ 'Stripe-Signature': stale.replace(/t=\d+/, `t=${nowS}`) }, payload), { secrets: [secret], now: NOW }), 'bad-signature');
});

test('Standard Webhooks: the spec vector and the standardwebhooks library verify; ±5 min; unknown versions skipped', () => {
  const verify = verifierFor('standard-webhooks');
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const vector = request({ 'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'webhook-timestamp': '1614265330', 'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=' }, '{"test": 2432232314}');
  const at = new Date(1614265330 * 1000);
  const v = ok(verify(vector, { secrets: [secret], now: at }));
  assert.deepEqual([v.deliveryId, v.dedupKey, v.type], ['msg_p5jXN8AQM9LWM0D4loKWxJek', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 'message']);
  refused(verify(vector, { secrets: [secret], now: new Date((1614265330 + 301) * 1000) }), 'stale-timestamp');
  refused(verify(vector, { secrets: [secret], now: new Date((1614265330 - 301) * 1000) }), 'stale-timestamp');

  const wh = new StandardWebhook(secret);
  const payload = JSON.stringify({ type: 'invoice.paid', data: { id: 'in_1' } });
  const signature = wh.sign('msg_2', NOW, payload);
  const headers = { 'webhook-id': 'msg_2', 'webhook-timestamp': String(nowS), 'webhook-signature': `v1a,ed25519sig v2,future ${signature}` };
  assert.equal(ok(verify(request(headers, payload), { secrets: [secret], now: NOW })).type, 'invoice.paid');
  refused(verify(request({ ...headers, 'webhook-id': 'msg_3' }, payload), { secrets: [secret], now: NOW }), 'bad-signature');
  refused(verify(request({ ...headers, 'webhook-signature': 'v1a,only-other-versions' }, payload), { secrets: [secret], now: NOW }), 'bad-signature');
  refused(verify(request({ 'webhook-id': 'msg_2', 'webhook-signature': signature }, payload), { secrets: [secret], now: NOW }), 'missing-signature');
});

test('Shopify: base64 HMAC of the raw body; topic as type; dedup on the webhook id', () => {
  const verify = verifierFor('shopify');
  const body = '{"id":820982911946154508,"email":"jon@example.com"}';
  const sig = createHmac('sha256', 'shpss_secret').update(body).digest('base64');
  const v = ok(verify(request({ 'X-Shopify-Hmac-SHA256': sig, 'X-Shopify-Topic': 'orders/create', 'X-Shopify-Webhook-Id': 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043' }, body), { secrets: ['shpss_secret'], now: NOW }));
  assert.deepEqual([v.type, v.dedupKey], ['orders.create', 'b54557e4-bdd9-4b37-8a5f-bf7d70bcd043']);
  refused(verify(request({ 'X-Shopify-Hmac-SHA256': createHmac('sha256', 'shpss_secret').update(body).digest('hex') }, body), { secrets: ['shpss_secret'], now: NOW }), 'bad-signature');
});

test('Slack: v0 signatures within 300 s; url_verification is answered with its challenge; form bodies too', () => {
  const verify = verifierFor('slack');
  const secret = '8f742231b10e8888abcd99yyyzzz85a5';
  const signed = (ts: number, body: string, extra: Record<string, string> = {}): InboundRequest =>
    request({ 'X-Slack-Request-Timestamp': String(ts), 'X-Slack-Signature': `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`, ...extra }, body);

  const challenge = ok(verify(signed(nowS, '{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}'), { secrets: [secret], now: NOW }));
  assert.deepEqual(challenge.reply, { contentType: 'text/plain', body: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' });

  const event = ok(verify(signed(nowS - 60, '{"type":"event_callback","event_id":"Ev123","event":{"type":"app_mention"}}'), { secrets: [secret], now: NOW }));
  assert.deepEqual([event.type, event.dedupKey], ['event.app_mention', 'Ev123']);

  const form = 'token=x&command=%2Fdeploy&text=prod&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
  assert.equal(ok(verify(signed(nowS, form, { 'content-type': 'application/x-www-form-urlencoded' }), { secrets: [secret], now: NOW })).type, 'command');

  refused(verify(signed(nowS - 301, '{"type":"event_callback"}'), { secrets: [secret], now: NOW }), 'stale-timestamp');
  refused(verify(signed(nowS, '{"type":"event_callback"}'), { secrets: ['other'], now: NOW }), 'bad-signature');
});

test('generic HMAC: header, algorithm, encoding, prefix, timestamp and dedup/type locations are settings', () => {
  const body = JSON.stringify({ data: { id: 'obj_9', kind: 'thing.created' } });
  const ts = String(nowS);
  const verify = verifierFor('generic', {
    ...GENERIC_DEFAULTS,
    signatureHeader: 'x-acme-signature',
    algorithm: 'sha512',
    encoding: 'base64',
    prefix: 'sha512=',
    timestampHeader: 'x-acme-timestamp',
    signedContent: 'timestamp.body',
    dedupJsonPath: 'data.id',
    typeJsonPath: 'data.kind',
  });
  const sig = `sha512=${createHmac('sha512', 'acme').update(`${ts}.${body}`).digest('base64')}`;
  const v = ok(verify(request({ 'x-acme-signature': sig, 'x-acme-timestamp': ts }, body), { secrets: ['acme'], now: NOW }));
  assert.deepEqual([v.type, v.dedupKey], ['thing.created', 'obj_9']);
  refused(verify(request({ 'x-acme-signature': sig, 'x-acme-timestamp': String(nowS - 1000) }, body), { secrets: ['acme'], now: NOW }), 'bad-signature');
  refused(verify(request({ 'x-acme-signature': sig }, body), { secrets: ['acme'], now: NOW }), 'missing-signature');
  refused(verify(request({ 'x-acme-signature': sig.replace('sha512=', '') , 'x-acme-timestamp': ts }, body), { secrets: ['acme'], now: NOW }), 'bad-signature');

  const plain = verifierFor('generic', { ...GENERIC_DEFAULTS, prefix: 'sha256=', dedupHeader: 'x-delivery' });
  const hex = `sha256=${createHmac('sha256', 'k').update(body).digest('hex')}`;
  const p = ok(plain(request({ 'x-signature': hex, 'x-delivery': 'd-77' }, body), { secrets: ['k'], now: NOW }));
  assert.deepEqual([p.type, p.dedupKey], ['message', 'd-77']);
  assert.match(ok(plain(request({ 'x-signature': hex }, body), { secrets: ['k'], now: NOW })).dedupKey, /^sha256:/);
});
