import { useEffect, useEffectEvent } from "react";

/**
 * Call `fn` now and then every `intervalMs` (default 5000 ms) while mounted, skipping ticks while
 * the tab is hidden and never overlapping two calls. `key` names what is polled (e.g. the
 * channel): when it changes, or on unmount, the call in flight is aborted through the signal
 * `fn` gets, and the cycle restarts. `fn` must not touch state once its signal is aborted (a
 * late answer for the previous key must never land on the next one's page).
 */
export function usePoll(
  fn: (signal: AbortSignal) => Promise<void>,
  intervalMs = 5000,
  key: string = "",
): void {
  const call = useEffectEvent(fn);
  useEffect(() => {
    const controller = new AbortController();
    const { signal } = controller;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async (): Promise<void> => {
      if (typeof document === "undefined" || document.visibilityState !== "hidden") {
        try {
          await call(signal);
        } catch {
          // the caller shows its own error state; keep polling
        }
      }
      if (!signal.aborted) timer = setTimeout(() => void tick(), intervalMs);
    };
    void tick();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [intervalMs, key]);
}

/** True for the rejection of a request that was aborted on purpose. */
export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}
