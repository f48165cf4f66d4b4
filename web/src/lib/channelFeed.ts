/**
 * A list of channel cards that stays current: the first page is fetched again every `pollMs`,
 * "Show more" appends the next page, and the events socket's channel frames (a title, category,
 * tags or viewer change, a go-live) update the cards in place at once.
 */
import { useCallback, useEffect, useEffectEvent, useRef, useState } from "react";
import type { Channel } from "../api/types";
import { useEvents, type ChannelEvent } from "../chat/events";
import { messageOf } from "../components/bits";
import { usePoll } from "./usePoll";

/** A page of channels: what the channel lists of the API answer. */
export interface ChannelPageAnswer {
  channels: Channel[];
  next_offset?: number | null;
}

/**
 * `list` with `event` applied. `stale` says the list cannot show the change by itself and
 * should be fetched again: a channel went live or offline, or changed category (its slug is
 * not in the frame), or (with `unknownLive`) a live channel the list does not hold yet.
 */
export function applyChannelEvent(
  list: Channel[],
  event: ChannelEvent,
  unknownLive = false,
): { list: Channel[]; stale: boolean } {
  const found = list.find((c) => c.name === event.name);
  if (!found) return { list, stale: unknownLive && event.live };
  const stale = found.live !== event.live || found.category !== event.category;
  const updated: Channel = {
    ...found,
    live: event.live,
    title: event.title,
    category: event.category,
    ...(event.tags ? { tags: event.tags } : {}),
    ...(event.live && typeof event.viewers === "number" ? { viewers: event.viewers } : {}),
  };
  return { list: list.map((c) => (c === found ? updated : c)), stale };
}

/** Live channels first, the most watched first; the rest keep their order. */
export function byViewers(channels: Channel[]): Channel[] {
  return [...channels].sort((a, b) => Number(b.live) - Number(a.live) || (b.viewers ?? 0) - (a.viewers ?? 0));
}

export interface ChannelFeed<T extends ChannelPageAnswer> {
  /** The latest answer of the first page (its extra fields: a category, the search terms). */
  first: T | null;
  channels: Channel[] | null;
  error: string;
  /** Whether another page follows. */
  more: boolean;
  loadingMore: boolean;
  loadMore: () => void;
}

export function useChannelFeed<T extends ChannelPageAnswer>(
  key: string,
  fetchPage: (offset: number, limit: number, signal: AbortSignal) => Promise<T>,
  { pageSize = 24, pollMs = 30_000, unknownLive = false } = {},
): ChannelFeed<T> {
  const [first, setFirst] = useState<T | null>(null);
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState("");
  const [loadingMore, setLoadingMore] = useState(false);
  const [asked, setAsked] = useState(0);
  const loaded = useRef(0);

  usePoll(
    async (signal) => {
      try {
        const limit = Math.min(50, Math.max(pageSize, loaded.current));
        const answer = await fetchPage(0, limit, signal);
        if (signal.aborted) return;
        loaded.current = answer.channels.length;
        setFirst(answer);
        setChannels(answer.channels);
        setNext(answer.next_offset ?? null);
        setError("");
      } catch (e) {
        if (!signal.aborted) setError(messageOf(e));
      }
    },
    pollMs,
    `${key}\n${asked}`,
  );

  // a new key (another category, another search) starts from its first page
  useEffect(() => {
    loaded.current = 0;
  }, [key]);

  const loadMore = useCallback(() => {
    if (next === null) return;
    setLoadingMore(true);
    const controller = new AbortController();
    fetchPage(next, pageSize, controller.signal)
      .then((answer) => {
        setChannels((list) => {
          const have = new Set((list ?? []).map((c) => c.name));
          const merged = [...(list ?? []), ...answer.channels.filter((c) => !have.has(c.name))];
          loaded.current = merged.length;
          return merged;
        });
        setNext(answer.next_offset ?? null);
      })
      .catch((e: unknown) => setError(messageOf(e)))
      .finally(() => setLoadingMore(false));
  }, [next, pageSize, fetchPage]);

  // channel frames: in place at once; a change the list cannot show asks again (once a second)
  const { onChannel } = useEvents();
  const lastAsk = useRef(0);
  const onEvent = useEffectEvent((event: ChannelEvent) => {
    if (channels === null) return;
    const applied = applyChannelEvent(channels, event, unknownLive);
    if (applied.list !== channels) setChannels(applied.list);
    if (applied.stale && Date.now() - lastAsk.current > 1000) {
      lastAsk.current = Date.now();
      setAsked((n) => n + 1);
    }
  });
  useEffect(() => onChannel((event) => onEvent(event)), [onChannel]);

  return { first, channels, error, more: next !== null, loadingMore, loadMore };
}
