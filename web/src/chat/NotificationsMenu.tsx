/** The header's bell: unread count, and a menu of recent notifications (signed in only). */
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import type { Notification } from "../api/community";
import { useEvents } from "./events";

/** What a notification says, by its kind. */
export function notificationText(n: Pick<Notification, "kind" | "channel" | "title">): string {
  const what = n.title ? `: ${n.title}` : "";
  if (n.kind === "schedule_reminder") return `${n.channel} starts soon${what}`;
  if (n.kind === "schedule_start") return `${n.channel}'s scheduled stream starts now${what}`;
  return `${n.channel} is live${what}`;
}

export function NotificationsMenu() {
  const { notifications, unread, markRead } = useEvents();
  const [open, setOpen] = useState(false);
  const root = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!open) return;
    const onDown = (e: MouseEvent) => {
      if (root.current && !root.current.contains(e.target as Node)) setOpen(false);
    };
    document.addEventListener("mousedown", onDown);
    return () => document.removeEventListener("mousedown", onDown);
  }, [open]);

  return (
    <div
      className="notifications"
      ref={root}
      onKeyDown={(e) => {
        if (e.key === "Escape") setOpen(false);
      }}
    >
      <button
        type="button"
        className="btn btn-small notifications-button"
        aria-expanded={open}
        aria-label={unread ? `Notifications, ${unread} unread` : "Notifications"}
        onClick={() => setOpen(!open)}
      >
        <svg className="bell" width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
          <path
            fill="currentColor"
            d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
          />
        </svg>
        {unread > 0 && (
          <span className="notifications-count" data-testid="unread-count" aria-hidden="true">
            {unread > 99 ? "99+" : unread}
          </span>
        )}
      </button>
      {open && (
        <div className="notifications-menu" role="region" aria-label="Notifications">
          {notifications.length === 0 ? (
            <p className="muted small">No notifications.</p>
          ) : (
            <>
              <ul>
                {notifications.map((n) => (
                  <li key={n.id} className={n.read ? "is-read" : "is-unread"} data-testid="notification">
                    <Link
                      to={`/${encodeURIComponent(n.channel)}`}
                      onClick={() => {
                        setOpen(false);
                        if (!n.read) void markRead([n.id]);
                      }}
                    >
                      <strong>{n.channel}</strong>
                      {notificationText(n).slice(n.channel.length)}
                    </Link>
                  </li>
                ))}
              </ul>
              {unread > 0 && (
                <button type="button" className="btn btn-small" onClick={() => void markRead("all")}>
                  Mark all read
                </button>
              )}
            </>
          )}
        </div>
      )}
    </div>
  );
}
