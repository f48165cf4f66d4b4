/** The header's bell: unread count, and a menu of recent notifications (signed in only). */
import { useEffect, useRef, useState } from "react";
import { Link } from "react-router";
import { useEvents } from "./events";

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
        <span aria-hidden="true">🔔</span>
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
                      <strong>{n.channel}</strong> is live{n.title ? `: ${n.title}` : ""}
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
