/**
 * The dashboard's analytics: the streamer's last broadcasts in a table (when, length, peak and
 * average viewers, chat messages, new followers, the scheduled stream it fulfilled) and, for
 * the broadcast picked, its viewers over time. Refreshed every 30 s.
 */
import { useState } from "react";
import { useApi } from "../api/context";
import type { BroadcastAnalytics, BroadcastStats } from "../api/types";
import { ErrorBox, messageOf } from "../components/bits";
import { ViewersChart } from "../components/ViewersChart";
import { formatSeconds, formatStart } from "../lib/schedule";
import { usePoll } from "../lib/usePoll";

export function AnalyticsPanel({ limit = 20 }: { limit?: number }) {
  const api = useApi();
  const [rows, setRows] = useState<BroadcastStats[] | null>(null);
  const [error, setError] = useState("");
  const [picked, setPicked] = useState<number | null>(null);

  usePoll(
    async (signal) => {
      try {
        const answer = await api.analytics(limit, signal);
        if (signal.aborted) return;
        setRows(answer.broadcasts);
        setError("");
      } catch (e) {
        if (!signal.aborted) setError(messageOf(e));
      }
    },
    30_000,
    String(limit),
  );

  const shown = picked ?? rows?.[0]?.id ?? null;
  return (
    <section className="card dash-analytics" aria-labelledby="analytics-heading">
      <h2 id="analytics-heading">Analytics</h2>
      <ErrorBox>{error && `Could not read your analytics: ${error}`}</ErrorBox>
      {rows !== null && rows.length === 0 && (
        <p className="muted" data-testid="analytics-empty">
          No broadcasts yet: your figures show here after your first stream.
        </p>
      )}
      {rows !== null && rows.length > 0 && (
        <div className="table-scroll">
          <table className="analytics-table" data-testid="analytics-table">
            <caption className="visually-hidden">Your last broadcasts</caption>
            <thead>
              <tr>
                <th scope="col">Broadcast</th>
                <th scope="col">Length</th>
                <th scope="col">Peak viewers</th>
                <th scope="col">Average viewers</th>
                <th scope="col">Chat messages</th>
                <th scope="col">New followers</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((b) => (
                <tr key={b.id} className={b.id === shown ? "is-picked" : undefined} data-testid="analytics-row">
                  <th scope="row">
                    <button
                      type="button"
                      className="link-button"
                      aria-pressed={b.id === shown}
                      onClick={() => setPicked(b.id)}
                    >
                      <time dateTime={b.started_at}>{formatStart(b.started_at)}</time>
                    </button>
                    <span className="small muted analytics-title">
                      {b.live ? "live now · " : ""}
                      {b.title || "No title"}
                      {b.schedule && ` · scheduled as “${b.schedule.title}”`}
                    </span>
                  </th>
                  <td>{formatSeconds(b.duration_seconds)}</td>
                  <td data-testid="peak-viewers">{b.peak_viewers}</td>
                  <td>{b.average_viewers === null ? "–" : b.average_viewers.toFixed(1)}</td>
                  <td data-testid="chat-messages">{b.chat_messages}</td>
                  <td data-testid="new-followers">{b.new_followers}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {shown !== null && <BroadcastViewers key={shown} id={shown} />}
    </section>
  );
}

function BroadcastViewers({ id }: { id: number }) {
  const api = useApi();
  const [detail, setDetail] = useState<BroadcastAnalytics | null>(null);
  const [error, setError] = useState("");
  usePoll(
    async (signal) => {
      try {
        const answer = await api.broadcastAnalytics(id, signal);
        if (!signal.aborted) setDetail(answer);
      } catch (e) {
        if (!signal.aborted) setError(messageOf(e));
      }
    },
    30_000,
    String(id),
  );
  return (
    <div className="analytics-detail">
      <h3>
        Viewers over time
        {detail && <span className="small muted"> · {formatStart(detail.broadcast.started_at)}</span>}
      </h3>
      <ErrorBox>{error}</ErrorBox>
      {detail ? <ViewersChart samples={detail.viewers} /> : !error && <p role="status">Loading…</p>}
    </div>
  );
}
