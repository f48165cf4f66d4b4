/**
 * A channel's upcoming streams on its page: when (in the viewer's time zone, and in the
 * streamer's when that differs), title, category, expected length, and a link to the channel's
 * iCalendar feed. Hidden while there is nothing scheduled.
 */
import { useState } from "react";
import { useApi } from "../api/context";
import type { ChannelSchedule as Schedule } from "../api/types";
import { browserZone, formatClock, formatMinutes, formatStart, relativeStart } from "../lib/schedule";
import { useNow } from "../lib/useNow";
import { usePoll } from "../lib/usePoll";

export function ChannelSchedule({ name, pollMs = 60_000 }: { name: string; pollMs?: number }) {
  const api = useApi();
  const now = useNow();
  const [schedule, setSchedule] = useState<Schedule | null>(null);
  const mine = browserZone();

  usePoll(
    async (signal) => {
      try {
        const answer = await api.channelSchedule(name, signal);
        if (!signal.aborted) setSchedule(answer);
      } catch {
        // the page shows the channel's own errors; keep what was shown
      }
    },
    pollMs,
    name,
  );

  if (!schedule || schedule.schedule.length === 0) return null;
  return (
    <section className="channel-schedule" aria-labelledby="channel-schedule-heading" data-testid="channel-schedule">
      <h2 id="channel-schedule-heading">Upcoming streams</h2>
      <ul className="schedule-list">
        {schedule.schedule.map((s) => (
          <li key={s.id} className="schedule-item" data-testid="scheduled-stream">
            <span className="schedule-when">
              <time dateTime={s.starts_at}>{formatStart(s.starts_at)}</time>
              <span className="small muted">
                {" "}
                {s.broadcast_id !== null && s.channel.live ? "live now" : relativeStart(s.starts_at, now)}
                {s.timezone !== mine && ` · ${formatClock(s.starts_at, s.timezone)} in ${s.timezone}`}
              </span>
            </span>
            <span className="schedule-title" data-testid="scheduled-title">
              {s.title}
            </span>
            <span className="small muted">
              {[s.category, formatMinutes(s.duration_minutes)].filter(Boolean).join(" · ")}
            </span>
          </li>
        ))}
      </ul>
      <p className="small">
        <a href={schedule.ics_url} data-testid="ics-link">
          Add to your calendar (iCalendar)
        </a>
      </p>
    </section>
  );
}
