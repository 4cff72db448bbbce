import { Type } from 'typebox';
import type { Static } from 'typebox';
import { ListQuery } from './common.ts';

/** Longest span one usage query may cover. */
export const USAGE_MAX_DAYS = 366;

const Day = Type.String({ format: 'date', description: 'UTC day, `YYYY-MM-DD`.', examples: ['2026-11-01'] });

export const UsageQuery = Type.Object(
  {
    ...ListQuery.properties,
    keyId: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Only this key.' })),
    route: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Only this route, as `METHOD /v1/route/{param}`.', examples: ['GET /v1/keys/{id}'] })),
    from: Type.Optional(Type.String({ ...Day, description: 'First UTC day included (default: the first of this month).' })),
    to: Type.Optional(Type.String({ ...Day, description: 'Last UTC day included (default: today).' })),
    granularity: Type.String({ enum: ['day', 'month'], default: 'day', description: 'One row per key, route and day, or per month.' }),
  },
  { additionalProperties: false },
);

export const UsageRow = Type.Object(
  {
    keyId: Type.String({ examples: ['key_01jdx3m5a8q2v7k4r9t6w1y3zb'] }),
    route: Type.String({ examples: ['GET /v1/keys/{id}'] }),
    period: Type.String({ description: '`YYYY-MM-DD`, or `YYYY-MM` by month.', examples: ['2026-11-22'] }),
    requests: Type.Integer({ description: 'Requests admitted (refused ones are not counted).' }),
    units: Type.Integer({ description: 'Cost units those requests used (see `metering.routeCosts`).' }),
  },
  { additionalProperties: false },
);

export const UsageList = Type.Object({ data: Type.Array(UsageRow), nextCursor: Type.Union([Type.String(), Type.Null()]) }, { additionalProperties: false });

export type UsageListResponse = Static<typeof UsageList>;
export type UsageListQuery = Static<typeof UsageQuery>;
