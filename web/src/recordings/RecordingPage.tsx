/** `/videos/{id}`: one recording, played from its VOD playlist, with its channel and date. */
import { lazy, Suspense, useState } from "react";
import { Link, useParams } from "react-router";
import { ApiError } from "../api/client";
import { useApi } from "../api/context";
import { formatDuration, getRecording, recordingTitle, recordingWarning, type Recording } from "../api/recordings";
import { ErrorBox, Loading, messageOf, useTitle } from "../components/bits";
import { usePoll } from "../lib/usePoll";
import { NotFound } from "../pages/NotFound";

// hls.js is large: load it only where a video plays.
const VodPlayer = lazy(() => import("./VodPlayer").then((m) => ({ default: m.VodPlayer })));

export function RecordingRoute() {
  const { id = "" } = useParams();
  return <RecordingPage key={id} id={id} />;
}

export function RecordingPage({ id }: { id: string }) {
  const api = useApi();
  const [recording, setRecording] = useState<Recording | null>(null);
  const [missing, setMissing] = useState(!/^\d{1,15}$/.test(id));
  const [error, setError] = useState("");
  useTitle(recording ? recordingTitle(recording) : "Recording");

  usePoll(
    async (signal) => {
      if (missing && !recording) return;
      try {
        const r = await getRecording(api, Number(id), signal);
        if (signal.aborted) return;
        setRecording(r);
        setError("");
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) setMissing(true);
        else setError(messageOf(e));
      }
    },
    // a recording still being written grows: its figures are asked again now and then
    recording?.state === "recording" ? 10000 : 3_600_000,
    id,
  );

  if (missing) return <NotFound what="There is no such recording. It may have been deleted." />;
  if (!recording) {
    return error ? (
      <div className="page">
        <ErrorBox>{error}</ErrorBox>
      </div>
    ) : (
      <Loading />
    );
  }
  const warning = recordingWarning(recording);
  return (
    <div className="page page-wide recording-page">
      <div className="player-slot">
        <Suspense fallback={<div className="player-offline" role="status">Loading player…</div>}>
          <VodPlayer src={recording.playlist_url} title={recordingTitle(recording)} />
        </Suspense>
      </div>
      <section className="channel-info">
        <h1 className="recording-title" data-testid="recording-title">
          {recordingTitle(recording)}
        </h1>
        <p className="muted small">
          <Link to={`/${encodeURIComponent(recording.channel)}`}>{recording.channel}</Link>
          {" · "}
          {new Date(recording.started_at).toLocaleString()}
          {" · "}
          <span data-testid="recording-duration">{formatDuration(recording.duration)}</span>
          {recording.state === "recording" && " · still live: recording"}
        </p>
        {warning && <p className="warning small">{warning}</p>}
      </section>
    </div>
  );
}
