/**
 * The dashboard's recordings card: the recording switch (next broadcasts), the space the
 * channel's recordings take and the server's retention, and each recording with rename and
 * delete; a recording that stopped early or failed shows why as a warning.
 */
import { useState } from "react";
import { Link } from "react-router";
import { useApi } from "../api/context";
import {
  deleteRecording,
  formatBytes,
  formatDuration,
  listRecordings,
  recordingSettings,
  recordingTitle,
  recordingWarning,
  renameRecording,
  setRecording,
  type Recording,
  type RecordingSettings,
} from "../api/recordings";
import { ErrorBox, messageOf } from "../components/bits";
import { ActionStatus, useAction } from "../components/forms";
import { usePoll } from "../lib/usePoll";

export function RecordingsManager({ username }: { username: string }) {
  const api = useApi();
  const [settings, setSettings] = useState<RecordingSettings | null>(null);
  const [recordings, setRecordings] = useState<Recording[] | null>(null);
  const [error, setError] = useState("");
  const [asked, setAsked] = useState(0);
  const toggle = useAction();

  usePoll(
    async (signal) => {
      try {
        const [s, list] = await Promise.all([
          recordingSettings(api, username, signal),
          listRecordings(api, username, signal),
        ]);
        if (signal.aborted) return;
        setSettings(s);
        setRecordings(list.recordings);
        setError("");
      } catch (e) {
        if (!signal.aborted) setError(messageOf(e));
      }
    },
    10000,
    `${username}\n${asked}`,
  );

  const flip = (enabled: boolean) =>
    void toggle.run(async () => {
      setSettings(await setRecording(api, username, enabled));
      return enabled
        ? "Recording is on: your next broadcasts are recorded."
        : "Recording is off from your next broadcast.";
    });

  return (
    <section className="card dash-recordings" aria-labelledby="recordings-heading">
      <h2 id="recordings-heading">Recordings</h2>
      <ErrorBox>{error && `Could not load your recordings: ${error}`}</ErrorBox>
      {settings && (
        <>
          <div className="check">
            <input
              id="recording-enabled"
              type="checkbox"
              checked={settings.enabled}
              disabled={toggle.busy}
              onChange={(e) => flip(e.target.checked)}
            />
            <label htmlFor="recording-enabled">Record my broadcasts</label>
          </div>
          <p className="help" data-testid="recordings-usage">
            {!settings.server_enabled && "This server records nothing at the moment. "}
            Your recordings take {formatBytes(settings.used_bytes)}.{" "}
            {settings.retention_days > 0 &&
              `They are deleted ${settings.retention_days} days after the broadcast ends. `}
            {settings.quota_bytes > 0 &&
              `When the server's ${formatBytes(settings.quota_bytes)} for recordings fill up, the oldest go first.`}
          </p>
          <ActionStatus action={toggle} />
        </>
      )}
      {recordings && recordings.length === 0 && <p className="muted">No recordings yet.</p>}
      {recordings && recordings.length > 0 && (
        <ul className="recording-manage-list">
          {recordings.map((r) => (
            <RecordingRow key={r.id} recording={r} onChanged={() => setAsked((n) => n + 1)} />
          ))}
        </ul>
      )}
    </section>
  );
}

function RecordingRow({ recording, onChanged }: { recording: Recording; onChanged: () => void }) {
  const api = useApi();
  const [editing, setEditing] = useState(false);
  const [title, setTitle] = useState(recording.title);
  const action = useAction();
  const warning = recordingWarning(recording);
  const id = `recording-${recording.id}`;

  const save = action.submit(async () => {
    await renameRecording(api, recording.id, title.trim());
    setEditing(false);
    onChanged();
    return "Renamed.";
  });

  const remove = () =>
    void action.run(async () => {
      if (!window.confirm(`Delete “${recordingTitle(recording)}” for good?`)) return;
      await deleteRecording(api, recording.id);
      onChanged();
    });

  return (
    <li className="recording-row" data-testid={id}>
      {editing ? (
        <form className="form form-inline" onSubmit={save}>
          <label htmlFor={`${id}-title`}>Title</label>
          <input
            id={`${id}-title`}
            maxLength={140}
            required
            value={title}
            onChange={(e) => setTitle(e.target.value)}
          />
          <button type="submit" className="btn btn-small btn-primary" disabled={action.busy}>
            Save
          </button>
          <button type="button" className="btn btn-small" onClick={() => setEditing(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <div className="recording-row-head">
          {recording.state === "failed" ? (
            <span className="recording-name">{recordingTitle(recording)}</span>
          ) : (
            <Link to={`/videos/${recording.id}`} className="recording-name">
              {recordingTitle(recording)}
            </Link>
          )}
          <span className="muted small">
            {" "}
            {new Date(recording.started_at).toLocaleString()} · {formatDuration(recording.duration)} ·{" "}
            {formatBytes(recording.bytes)}
            {recording.state === "recording" && " · recording now"}
          </span>
        </div>
      )}
      {warning && (
        <p className="warning small" data-testid={`${id}-warning`}>
          {warning}
        </p>
      )}
      {!editing && (
        <div className="recording-actions">
          <button type="button" className="btn btn-small" onClick={() => setEditing(true)}>
            Rename
          </button>
          <button
            type="button"
            className="btn btn-small btn-danger"
            disabled={action.busy || recording.state === "recording"}
            title={recording.state === "recording" ? "It can be deleted once the broadcast ends" : undefined}
            onClick={remove}
          >
            Delete
          </button>
        </div>
      )}
      <ActionStatus action={action} />
    </li>
  );
}
