/**
 * The signed-in user's live events (`/ws/events`): notifications pushed as they happen (the
 * header's menu, with its unread count) and followed channels going live or offline (the browse
 * page listens). Signed out there is no socket and no notification.
 */
import { createContext, useCallback, useContext, useEffect, useEffectEvent, useMemo, useRef, useState } from "react";
import type { ReactNode } from "react";
import type { EventFrame, Notification } from "../api/community";
import { useApi } from "../api/context";
import { useAuth } from "../auth/AuthContext";
import { LiveSocket } from "./socket";

export type ChannelEvent = Extract<EventFrame, { type: "channel" }>;

export interface Events {
  notifications: Notification[];
  unread: number;
  /** Mark some notifications (or all) as read, here and on the server. */
  markRead(ids: number[] | "all"): Promise<void>;
  /** Listen for followed channels going live or offline; returns the function that stops. */
  onChannel(listener: (event: ChannelEvent) => void): () => void;
}

const EventsContext = createContext<Events | null>(null);

interface Inbox {
  notifications: Notification[];
  unread: number;
}

const emptyInbox: Inbox = { notifications: [], unread: 0 };

/** Notifications kept in the menu. */
const MAX_NOTIFICATIONS = 50;

export function EventsProvider({ children }: { children: ReactNode }) {
  const api = useApi();
  const { status, me } = useAuth();
  const user = status === "signed-in" ? (me?.username ?? null) : null;
  const [{ notifications, unread }, setInbox] = useState<Inbox>(emptyInbox);
  const listeners = useRef(new Set<(event: ChannelEvent) => void>());

  const onFrame = useEffectEvent((frame: EventFrame) => {
    if (frame.type === "notification") {
      const { type: _type, ...n } = frame;
      void _type;
      setInbox((box) =>
        box.notifications.some((x) => x.id === n.id)
          ? box
          : {
              notifications: [{ ...n, read: false }, ...box.notifications].slice(0, MAX_NOTIFICATIONS),
              unread: box.unread + 1,
            },
      );
    } else if (frame.type === "channel") {
      for (const l of listeners.current) l(frame);
    }
  });

  useEffect(() => {
    if (!user) return;
    const controller = new AbortController();
    api
      .notifications(controller.signal)
      .then((answer) => {
        setInbox({ notifications: answer.notifications.slice(0, MAX_NOTIFICATIONS), unread: answer.unread });
      })
      .catch(() => undefined); // the menu stays empty; pushed ones still arrive
    // the events socket's contract has no ping: the server's own keep-alive holds it open
    const socket = new LiveSocket<EventFrame>({ path: "/ws/events", client: api, onFrame, pingSeconds: 0, signedInOnly: true });
    socket.start();
    return () => {
      controller.abort();
      socket.stop();
      setInbox(emptyInbox);
    };
  }, [api, user]);

  const markRead = useCallback(
    async (ids: number[] | "all") => {
      const wanted = ids === "all" ? null : new Set(ids);
      const hit = (n: Notification) => wanted === null || wanted.has(n.id);
      setInbox((box) => ({
        notifications: box.notifications.map((n) => (hit(n) ? { ...n, read: true } : n)),
        unread: wanted === null ? 0 : Math.max(0, box.unread - box.notifications.filter((n) => !n.read && hit(n)).length),
      }));
      await api.markNotificationsRead(ids === "all" ? { all: true } : { ids }).catch(() => undefined);
    },
    [api],
  );

  const onChannel = useCallback((listener: (event: ChannelEvent) => void) => {
    const set = listeners.current;
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }, []);

  const value = useMemo<Events>(
    () => ({ notifications, unread, markRead, onChannel }),
    [notifications, unread, markRead, onChannel],
  );
  return <EventsContext.Provider value={value}>{children}</EventsContext.Provider>;
}

export function useEvents(): Events {
  const ctx = useContext(EventsContext);
  if (!ctx) throw new Error("useEvents outside EventsProvider");
  return ctx;
}
