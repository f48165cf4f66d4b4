import { useEffect, useState } from "react";

/** The current time in epoch ms, updated every `everyMs` (default 15 s): for uptimes. */
export function useNow(everyMs = 15_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(id);
  }, [everyMs]);
  return now;
}
