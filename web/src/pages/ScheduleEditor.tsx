/**
 * The dashboard's schedule: the streamer's upcoming streams (edit, cancel) and a form to
 * schedule one (title, category, start as a wall-clock time in a chosen time zone, defaulting to
 * the browser's, expected length). The start is sent without an offset together with the zone:
 * the server turns it into an instant, so a daylight-saving change between now and then is
 * handled there.
 */
import { useRef, useState } from "react";
import { useApi } from "../api/context";
import type { Channel, ScheduledStream } from "../api/types";
import { ErrorBox, messageOf } from "../components/bits";
import { ActionStatus, Field, useAction } from "../components/forms";
import {
  browserZone,
  durationChoices,
  formatMinutes,
  formatStart,
  inputValue,
  timeZones,
  wallClock,
} from "../lib/schedule";
import { usePoll } from "../lib/usePoll";

interface Draft {
  title: string;
  category: string;
  when: string;
  zone: string;
  minutes: number;
}

/** A new stream's form: the channel's title and category, the next full hour, an hour long. */
export function newDraft(channel: Channel | null, zone: string, now: number = Date.now()): Draft {
  const nextHour = Math.ceil((now + 30 * 60_000) / 3_600_000) * 3_600_000;
  return {
    title: channel?.title ?? "",
    category: channel?.category ?? "",
    when: wallClock(nextHour, zone),
    zone,
    minutes: 60,
  };
}

function draftOf(s: ScheduledStream): Draft {
  return {
    title: s.title,
    category: s.category,
    when: inputValue(s.starts_at_local),
    zone: s.timezone,
    minutes: s.duration_minutes,
  };
}

export function ScheduleEditor({ username, channel }: { username: string; channel: Channel | null }) {
  const api = useApi();
  const home = browserZone();
  const [streams, setStreams] = useState<ScheduledStream[] | null>(null);
  const [loadError, setLoadError] = useState("");
  const [editing, setEditing] = useState<number | null>(null);
  const [draft, setDraft] = useState<Draft>(() => newDraft(channel, home));
  const [confirming, setConfirming] = useState<number | null>(null);
  const [reload, setReload] = useState(0);
  const action = useAction();
  const titleInput = useRef<HTMLInputElement>(null);
  const heading = useRef<HTMLHeadingElement>(null);

  usePoll(
    async (signal) => {
      try {
        const answer = await api.channelSchedule(username, signal);
        if (signal.aborted) return;
        setStreams(answer.schedule);
        setLoadError("");
      } catch (e) {
        if (!signal.aborted) setLoadError(messageOf(e));
      }
    },
    60_000,
    `${username}\n${reload}`,
  );

  const set = (change: Partial<Draft>) => setDraft((d) => ({ ...d, ...change }));

  const startEditing = (s: ScheduledStream) => {
    setEditing(s.id);
    setDraft(draftOf(s));
    setConfirming(null);
    titleInput.current?.focus();
  };

  const stopEditing = () => {
    setEditing(null);
    setDraft(newDraft(channel, home));
  };

  const save = action.submit(async () => {
    if (!draft.when) throw new Error("Pick a date and a time.");
    const body = {
      title: draft.title.trim(),
      category: draft.category.trim(),
      starts_at: draft.when,
      timezone: draft.zone,
      duration_minutes: draft.minutes,
    };
    if (editing === null) {
      const made = await api.createSchedule(username, body);
      setDraft(newDraft(channel, home));
      setReload((n) => n + 1);
      return `Scheduled “${made.title}” for ${formatStart(made.starts_at, made.timezone)} (${made.timezone}).`;
    }
    const changed = await api.patchSchedule(username, editing, body);
    stopEditing();
    setReload((n) => n + 1);
    return `Saved “${changed.title}”.`;
  });

  const cancel = (s: ScheduledStream) =>
    void action.run(async () => {
      await api.cancelSchedule(username, s.id);
      setConfirming(null);
      if (editing === s.id) stopEditing();
      setReload((n) => n + 1);
      heading.current?.focus();
      return `Cancelled “${s.title}”.`;
    });

  const zones = timeZones(home, draft.zone);
  return (
    <section className="card dash-schedule" aria-labelledby="schedule-heading">
      <h2 id="schedule-heading" ref={heading} tabIndex={-1}>
        Schedule
      </h2>
      <ErrorBox>{loadError && `Could not read your schedule: ${loadError}`}</ErrorBox>
      {streams !== null && streams.length === 0 && <p className="muted">No streams scheduled.</p>}
      {streams !== null && streams.length > 0 && (
        <ul className="schedule-list" aria-label="Your scheduled streams">
          {streams.map((s) => (
            <li key={s.id} className="schedule-item" data-testid="my-scheduled-stream">
              <span className="schedule-when">
                <time dateTime={s.starts_at}>{formatStart(s.starts_at, s.timezone)}</time>{" "}
                <span className="small muted">
                  {s.timezone} · {formatMinutes(s.duration_minutes)}
                </span>
              </span>
              <span className="schedule-title">{s.title}</span>
              {s.category && <span className="small muted">{s.category}</span>}
              {confirming === s.id ? (
                <span className="actions" role="group" aria-label={`Cancel “${s.title}”?`}>
                  <button type="button" className="btn btn-small btn-danger" onClick={() => cancel(s)} disabled={action.busy}>
                    Yes, cancel it
                  </button>
                  <button type="button" className="btn btn-small" onClick={() => setConfirming(null)}>
                    Keep it
                  </button>
                </span>
              ) : (
                <span className="actions">
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={() => startEditing(s)}
                    aria-label={`Edit “${s.title}”`}
                    aria-pressed={editing === s.id}
                  >
                    Edit
                  </button>
                  <button
                    type="button"
                    className="btn btn-small"
                    onClick={() => setConfirming(s.id)}
                    aria-label={`Cancel “${s.title}”`}
                  >
                    Cancel stream
                  </button>
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
      <h3>{editing === null ? "Schedule a stream" : "Edit the scheduled stream"}</h3>
      <form className="form" onSubmit={save} data-testid="schedule-form">
        <Field
          ref={titleInput}
          id="schedule-title"
          label="Stream title"
          maxLength={140}
          required
          value={draft.title}
          onValue={(title) => set({ title })}
        />
        <Field
          id="schedule-category"
          label="Stream category"
          maxLength={50}
          value={draft.category}
          onValue={(category) => set({ category })}
        />
        <Field
          id="schedule-start"
          label="Starts"
          type="datetime-local"
          required
          value={draft.when}
          onValue={(when) => set({ when })}
          help="The date and time in the time zone below."
        />
        <label htmlFor="schedule-zone">Time zone</label>
        <select id="schedule-zone" value={draft.zone} onChange={(e) => set({ zone: e.target.value })}>
          {zones.map((z) => (
            <option key={z} value={z}>
              {z === home ? `${z} (yours)` : z}
            </option>
          ))}
        </select>
        <label htmlFor="schedule-duration">Expected length</label>
        <select
          id="schedule-duration"
          value={draft.minutes}
          onChange={(e) => set({ minutes: Number(e.target.value) })}
        >
          {durationChoices(draft.minutes).map((m) => (
            <option key={m} value={m}>
              {formatMinutes(m)}
            </option>
          ))}
        </select>
        <div className="actions">
          <button type="submit" className="btn btn-primary" disabled={action.busy}>
            {editing === null ? "Schedule" : "Save changes"}
          </button>
          {editing !== null && (
            <button type="button" className="btn" onClick={stopEditing}>
              Stop editing
            </button>
          )}
        </div>
      </form>
      <ActionStatus action={action} />
    </section>
  );
}
