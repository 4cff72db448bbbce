import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { utcDay } from '../../core/periods.ts';
import { Problem } from '../../core/problems.ts';
import type { Services } from '../services.ts';
import { AUTH_PROBLEMS, curlExample, problemResponses } from '../schemas/common.ts';
import { USAGE_MAX_DAYS, UsageList, UsageQuery } from '../schemas/usage.ts';

const DAY_MS = 86_400_000;

export function registerUsageRoutes(app: FastifyInstance, services: Services): void {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/v1/usage', {
    config: { scope: 'usage:read' },
    schema: {
      operationId: 'listUsage',
      tags: ['usage'],
      summary: 'Usage by key, route and period',
      description:
        'Requests and cost units per API key, route and UTC day (or month), from the metering ledger. Counts reach the ledger within a second; this process writes its own first.' +
        curlExample('GET', '/v1/usage?from=2026-11-01&to=2026-11-30&granularity=month'),
      querystring: UsageQuery,
      response: { 200: UsageList, ...problemResponses(...AUTH_PROBLEMS, 'validation-failed', 'invalid-cursor') },
    },
    handler: async (request) => {
      const q = request.query;
      const now = services.clock();
      const fromDay = q.from ?? `${utcDay(now).slice(0, 7)}-01`;
      const toDay = q.to ?? utcDay(now);
      if (fromDay > toDay) throw new Problem('validation-failed', { detail: 'querystring.from must not be after querystring.to' });
      if ((Date.parse(toDay) - Date.parse(fromDay)) / DAY_MS >= USAGE_MAX_DAYS) {
        throw new Problem('validation-failed', { detail: `a usage query covers at most ${USAGE_MAX_DAYS} days` });
      }
      // Best effort: the report includes what this process counted up to now.
      await services.meter.flush().catch(() => undefined);
      return services.store.usage.query({
        keyId: q.keyId ?? null,
        route: q.route ?? null,
        fromDay,
        toDay,
        granularity: q.granularity as 'day' | 'month',
        limit: q.limit,
        cursor: q.cursor ?? null,
      });
    },
  });
}
