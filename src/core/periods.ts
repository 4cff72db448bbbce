/** Metering periods, all in UTC. */

/** `YYYY-MM-DD` */
export function utcDay(at: Date): string {
  return at.toISOString().slice(0, 10);
}

/** `YYYY-MM` */
export function utcMonth(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** First and last day of the month `at` falls in; day strings compare in order. */
export function monthDays(at: Date): { first: string; last: string } {
  const month = utcMonth(at);
  const end = nextMonthStart(at);
  return { first: `${month}-01`, last: utcDay(new Date(end.getTime() - 86_400_000)) };
}

/** When the month after `at`'s begins: a monthly quota's reset. */
export function nextMonthStart(at: Date): Date {
  return new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
}
