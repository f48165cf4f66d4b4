/**
 * Streamer dashboard: live status and ingest stats (polled every 3 s), OBS set-up with the
 * server URL and the stream key (hidden until asked; copy; rotate), the stream info editor, and
 * end-broadcast / enable-ingest.
 */
import { useEffect, useState } from "react";
import type { FormEvent } from "react";
import { Link } from "react-router";
import { api } from "../api/client";
import {
  ingestEnabledOf,
  normalizeChannel,
  rtmpServerUrl,
  splitTags,
  streamKeyOf,
  type Channel,
} from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { CopyButton } from "../components/CopyButton";
import { ErrorBox, LiveBadge, messageOf, Notice, useTitle } from "../components/bits";
import {
  formatBitrate,
  formatFps,
  formatResolution,
  formatUptime,
  keyframeWarning,
} from "../lib/format";
import { usePoll } from "../lib/usePoll";

export function Dashboard() {
  useTitle("Dashboard");
  const { me } = useAuth();
  if (!me) return <p className="page" role="status">Loading…</p>;
  return <DashboardFor username={me.username} />;
}

function DashboardFor({ username }: { username: string }) {
  const [channel, setChannel] = useState<Channel | null>(null);
  const [statusError, setStatusError] = useState("");
  const [ingestEnabled, setIngestEnabled] = useState<boolean | undefined>(undefined);

  usePoll(
    async () => {
      try {
        const c = normalizeChannel(
          await api.get<unknown>(`/channels/${encodeURIComponent(username)}`),
        );
        setChannel(c);
        if (c?.ingest_enabled !== undefined) setIngestEnabled(c.ingest_enabled);
        setStatusError("");
      } catch (e) {
        setStatusError(messageOf(e));
      }
    },
    3000,
    [username],
  );

  return (
    <div className="page dashboard">
      <h1>Dashboard</h1>
      <div className="dash-grid">
        <LiveStatus
          username={username}
          channel={channel}
          error={statusError}
          ingestEnabled={ingestEnabled}
          onIngestChange={setIngestEnabled}
        />
        <ObsSetup onIngestKnown={setIngestEnabled} />
        {channel && <StreamInfoEditor channel={channel} onSaved={setChannel} />}
      </div>
    </div>
  );
}

function LiveStatus({
  username,
  channel,
  error,
  ingestEnabled,
  onIngestChange,
}: {
  username: string;
  channel: Channel | null;
  error: string;
  ingestEnabled: boolean | undefined;
  onIngestChange: (enabled: boolean) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState("");
  const [actionError, setActionError] = useState("");
  const stats = channel?.stream?.stats ?? null;
  const warning = keyframeWarning(stats?.keyframe_interval_s ?? null);

  async function act(path: string, enabled: boolean, done: string): Promise<void> {
    setBusy(true);
    setActionError("");
    setMessage("");
    try {
      await api.post<unknown>(path);
      onIngestChange(enabled);
      setMessage(done);
    } catch (e) {
      setActionError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card dash-status" aria-labelledby="status-heading">
      <h2 id="status-heading">Stream status</h2>
      <ErrorBox>{error && `Could not read the status: ${error}`}</ErrorBox>
      {channel === null ? (
        <p role="status">Checking…</p>
      ) : (
        <div data-testid="dashboard-status" data-live={channel.live ? "true" : "false"}>
          <p className="status-line">
            <LiveBadge live={channel.live} />{" "}
            {channel.live ? (
              <>
                You are live
                {channel.stream?.started_at &&
                  ` for ${formatUptime(channel.stream.started_at, Date.now())}`}
                . <Link to={`/${encodeURIComponent(username)}`}>Open your channel</Link>
              </>
            ) : (
              "Not receiving a stream. Start streaming in OBS with the settings below."
            )}
          </p>
          {warning && (
            <p className="warning" role="alert" data-testid="keyframe-warning">
              {warning}
            </p>
          )}
          {channel.live && (
            <dl className="stats" data-testid="ingest-stats">
              <dt>Video</dt>
              <dd>{stats?.video_codec ?? "–"}</dd>
              <dt>Audio</dt>
              <dd>{stats?.audio_codec ?? "–"}</dd>
              <dt>Resolution</dt>
              <dd>{formatResolution(stats?.width ?? null, stats?.height ?? null)}</dd>
              <dt>Frame rate</dt>
              <dd>{formatFps(stats?.fps ?? null)}</dd>
              <dt>Bitrate</dt>
              <dd>{formatBitrate(stats?.bitrate_kbps ?? null)}</dd>
              <dt>Keyframe interval</dt>
              <dd>
                {stats?.keyframe_interval_s != null ? `${stats.keyframe_interval_s.toFixed(1)} s` : "–"}
              </dd>
              <dt>Encoder</dt>
              <dd>{stats?.encoder ?? "–"}</dd>
            </dl>
          )}
        </div>
      )}
      <div className="actions">
        <button
          type="button"
          className="btn btn-danger"
          disabled={busy}
          onClick={() =>
            void act(
              "/me/broadcast/end",
              false,
              "Broadcast ended. Your key is held off until you enable ingest again, so OBS cannot reconnect by itself.",
            )
          }
        >
          End broadcast
        </button>
        <button
          type="button"
          className="btn"
          disabled={busy}
          onClick={() => void act("/me/broadcast/enable", true, "Ingest enabled: you can go live again.")}
        >
          Enable ingest
        </button>
      </div>
      {ingestEnabled === false && !message && (
        <p className="warning">Ingest is held off: OBS cannot go live until you enable it.</p>
      )}
      <Notice>{message}</Notice>
      <ErrorBox>{actionError}</ErrorBox>
    </section>
  );
}

function ObsSetup({ onIngestKnown }: { onIngestKnown: (enabled: boolean) => void }) {
  const [serverUrl, setServerUrl] = useState(() => rtmpServerUrl(null, window.location.hostname));
  const [key, setKey] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmRotate, setConfirmRotate] = useState(false);
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");

  useEffect(() => {
    let cancelled = false;
    api
      .get<unknown>("/server-info", { auth: false })
      .then((info) => {
        if (!cancelled) setServerUrl(rtmpServerUrl(info, window.location.hostname));
      })
      .catch(() => undefined); // no server-info: keep the page's host
    return () => {
      cancelled = true;
    };
  }, []);

  async function reveal(): Promise<void> {
    setBusy(true);
    setError("");
    try {
      const body = await api.get<unknown>("/me/stream-key");
      const k = streamKeyOf(body);
      if (!k) throw new Error("The server did not send a key.");
      setKey(k);
      const enabled = ingestEnabledOf(body);
      if (enabled !== undefined) onIngestKnown(enabled);
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  async function rotate(): Promise<void> {
    setBusy(true);
    setError("");
    setMessage("");
    try {
      const body = await api.post<unknown>("/me/stream-key");
      const k = streamKeyOf(body);
      if (k) setKey(k);
      else await reveal();
      setConfirmRotate(false);
      setMessage("New key made. The old key no longer works: paste the new one into OBS.");
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card dash-obs" aria-labelledby="obs-heading">
      <h2 id="obs-heading">Set up OBS</h2>
      <p>
        In OBS open <em>Settings → Stream</em>, choose <em>Service: Custom…</em> and enter:
      </p>
      <label htmlFor="obs-server">Server</label>
      <div className="field-row">
        <input id="obs-server" readOnly value={serverUrl} data-testid="server-url" />
        <CopyButton text={serverUrl} />
      </div>
      <label htmlFor="obs-key">Stream key</label>
      <div className="field-row">
        {key === null ? (
          <>
            <input id="obs-key" readOnly value="••••••••••••••••••••" aria-describedby="obs-key-help" />
            <button type="button" className="btn btn-small" onClick={() => void reveal()} disabled={busy}>
              Show key
            </button>
          </>
        ) : (
          <>
            <input
              id="obs-key"
              readOnly
              value={key}
              data-testid="stream-key"
              className="mono"
              onFocus={(e) => e.currentTarget.select()}
              aria-describedby="obs-key-help"
            />
            <CopyButton text={key} />
            <button type="button" className="btn btn-small" onClick={() => setKey(null)}>
              Hide
            </button>
          </>
        )}
      </div>
      <p id="obs-key-help" className="help">
        Anyone with this key can stream as you. Never show it on stream.
      </p>
      {confirmRotate ? (
        <div className="confirm" role="group" aria-label="Confirm key rotation">
          <p>The current key stops working at once. Continue?</p>
          <button type="button" className="btn btn-danger" onClick={() => void rotate()} disabled={busy}>
            Make a new key
          </button>{" "}
          <button type="button" className="btn" onClick={() => setConfirmRotate(false)}>
            Cancel
          </button>
        </div>
      ) : (
        <button type="button" className="btn" onClick={() => setConfirmRotate(true)}>
          Rotate key…
        </button>
      )}
      <Notice>{message}</Notice>
      <ErrorBox>{error}</ErrorBox>
      <h3>Recommended output settings</h3>
      <p className="muted small">
        <em>Settings → Output</em>, Output Mode <em>Advanced</em>:
      </p>
      <ul className="recommend">
        <li>
          Keyframe Interval: <strong>1 s</strong> (2 s at most) — it sets how close to live viewers
          can be.
        </li>
        <li>
          Rate Control: <strong>CBR</strong>, Bitrate 2500–6000 Kbps (leave headroom in your upload).
        </li>
        <li>
          Encoder: <strong>x264</strong>, CPU Usage Preset <strong>veryfast</strong>, Tune{" "}
          <strong>zerolatency</strong> (or a hardware encoder with B-frames off).
        </li>
        <li>Audio: AAC, 48 kHz or 44.1 kHz, 128–160 kbps.</li>
      </ul>
    </section>
  );
}

function StreamInfoEditor({ channel, onSaved }: { channel: Channel; onSaved: (c: Channel) => void }) {
  const [title, setTitle] = useState(channel.title);
  const [category, setCategory] = useState(channel.category);
  const [tags, setTags] = useState(channel.tags.join(", "));
  const [description, setDescription] = useState(channel.description);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");

  async function save(e: FormEvent): Promise<void> {
    e.preventDefault();
    setBusy(true);
    setError("");
    setMessage("");
    try {
      const body = await api.patch<unknown>(`/channels/${encodeURIComponent(channel.name)}`, {
        title: title.trim(),
        category: category.trim(),
        tags: splitTags(tags),
        description,
      });
      const updated = normalizeChannel(body);
      if (updated) onSaved(updated);
      setMessage("Saved.");
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card dash-info" aria-labelledby="info-heading">
      <h2 id="info-heading">Stream info</h2>
      <form className="form" onSubmit={(e) => void save(e)}>
        <label htmlFor="info-title">Title</label>
        <input id="info-title" maxLength={140} value={title} onChange={(e) => setTitle(e.target.value)} />
        <label htmlFor="info-category">Category</label>
        <input id="info-category" maxLength={60} value={category} onChange={(e) => setCategory(e.target.value)} />
        <label htmlFor="info-tags">Tags</label>
        <input
          id="info-tags"
          value={tags}
          aria-describedby="info-tags-help"
          onChange={(e) => setTags(e.target.value)}
        />
        <p id="info-tags-help" className="help">Separate tags with commas.</p>
        <label htmlFor="info-description">Description</label>
        <textarea
          id="info-description"
          rows={4}
          maxLength={2000}
          value={description}
          onChange={(e) => setDescription(e.target.value)}
        />
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Saving…" : "Save"}
        </button>
        <Notice>{message}</Notice>
        <ErrorBox>{error}</ErrorBox>
      </form>
    </section>
  );
}
