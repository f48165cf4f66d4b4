import { useEffect, useRef } from "react";

/**
 * Call `fn` now and then every `intervalMs` (default 5000 ms) while mounted, skipping ticks while
 * the tab is hidden and never overlapping two calls. Changing `deps` restarts the cycle.
 */
export function usePoll(fn: () => Promise<void>, intervalMs = 5000, deps: unknown[] = []): void {
  const fnRef = useRef(fn);
  fnRef.current = fn;
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      if (stopped) return;
      if (typeof document === "undefined" || document.visibilityState !== "hidden") {
        try {
          await fnRef.current();
        } catch {
          // the caller shows its own error state; keep polling
        }
      }
      if (!stopped) timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [intervalMs, ...deps]);
}
