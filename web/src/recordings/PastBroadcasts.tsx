/** The channel page's list of past broadcasts (its recordings), newest first. */
import { useState } from "react";
import { Link } from "react-router";
import { useApi } from "../api/context";
import { formatDuration, listRecordings, recordingTitle, type Recording } from "../api/recordings";
import { usePoll } from "../lib/usePoll";

export function PastBroadcasts({ name }: { name: string }) {
  const api = useApi();
  const [recordings, setRecordings] = useState<Recording[] | null>(null);

  usePoll(
    async (signal) => {
      try {
        const found = await listRecordings(api, name, signal);
        if (!signal.aborted) setRecordings(found.recordings);
      } catch {
        // the list is an extra: the channel page says itself when the server cannot be reached
      }
    },
    60000,
    name,
  );

  const shown = recordings?.filter((r) => r.state !== "failed") ?? [];
  if (shown.length === 0) return null;
  return (
    <section className="past-broadcasts" aria-labelledby="past-heading" data-testid="past-broadcasts">
      <h2 id="past-heading">Past broadcasts</h2>
      <ul className="recording-list">
        {shown.map((r) => (
          <li key={r.id}>
            <Link to={`/videos/${r.id}`} className="recording-link">
              <span className="recording-name">{recordingTitle(r)}</span>
              <span className="muted small">
                {" "}
                {new Date(r.started_at).toLocaleDateString()} · {formatDuration(r.duration)}
                {r.state === "recording" && " · live now"}
              </span>
            </Link>
          </li>
        ))}
      </ul>
    </section>
  );
}
