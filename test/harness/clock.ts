/** A clock tests move by hand. Starts at the real time unless given one. */
export interface TestClock {
  (): Date;
  set(at: Date): void;
  advance(ms: number): void;
}

export function testClock(start: Date = new Date()): TestClock {
  let now = start.getTime();
  const clock = (() => new Date(now)) as TestClock;
  clock.set = (at) => {
    now = at.getTime();
  };
  clock.advance = (ms) => {
    now += ms;
  };
  return clock;
}
