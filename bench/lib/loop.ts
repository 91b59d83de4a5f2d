/**
 * Watches the main event loop: a timer every `everyMs` that counts its ticks and the longest gap between two of
 * them. A loop blocked by synchronous work shows as one long gap; a free one ticks about every `everyMs`.
 */
export interface LoopWatch {
  stop(): { ticks: number; longestGapMs: number };
}

export function watchLoop(everyMs = 2): LoopWatch {
  let last = performance.now();
  let longest = 0;
  let ticks = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return { ticks, longestGapMs: Math.max(longest, performance.now() - last) };
    },
  };
}
