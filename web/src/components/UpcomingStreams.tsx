/**
 * Scheduled streams of every channel, soonest first (`GET /schedule/upcoming`): a small section
 * for the home page or any other. Shows nothing while loading, on an error, or when nothing is
 * scheduled, so it can be placed anywhere without leaving an empty box.
 */
import { useState } from "react";
import { Link } from "react-router";
import { useApi } from "../api/context";
import type { ScheduledStream } from "../api/types";
import { formatMinutes, formatStart, relativeStart } from "../lib/schedule";
import { useNow } from "../lib/useNow";
import { usePoll } from "../lib/usePoll";
import { Avatar } from "./bits";

export function UpcomingStreams({
  limit = 8,
  heading = "Upcoming streams",
  pollMs = 60_000,
}: {
  limit?: number;
  heading?: string;
  pollMs?: number;
}) {
  const api = useApi();
  const now = useNow();
  const [streams, setStreams] = useState<ScheduledStream[]>([]);

  usePoll(
    async (signal) => {
      try {
        const page = await api.upcoming(limit, undefined, signal);
        if (!signal.aborted) setStreams(page.schedule);
      } catch {
        // a side section: keep what was shown
      }
    },
    pollMs,
    String(limit),
  );

  if (streams.length === 0) return null;
  return (
    <section className="upcoming" aria-labelledby="upcoming-heading" data-testid="upcoming-streams">
      <h2 id="upcoming-heading">{heading}</h2>
      <ul className="upcoming-list">
        {streams.map((s) => (
          <li key={s.id} className="upcoming-item" data-testid="upcoming-stream">
            <Link to={`/${encodeURIComponent(s.channel.name)}`} className="upcoming-link">
              <Avatar name={s.channel.name} url={s.channel.avatar_url} size={36} />
              <span className="upcoming-text">
                <span className="upcoming-title">{s.title}</span>
                <span className="small muted">
                  {s.channel.display_name}
                  {s.category && ` · ${s.category}`}
                </span>
                <span className="small">
                  <time dateTime={s.starts_at}>{formatStart(s.starts_at)}</time>
                  {" · "}
                  {s.channel.live && s.broadcast_id !== null ? "live now" : relativeStart(s.starts_at, now)}
                  {" · "}
                  {formatMinutes(s.duration_minutes)}
                </span>
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </section>
  );
}
