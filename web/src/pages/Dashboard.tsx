/**
 * Streamer dashboard: live status and ingest stats (polled every 3 s), stream health while live
 * (polled every 2 s, with graphs), OBS set-up with the server URL and the stream key (hidden
 * until asked; copy; rotate), the stream info editor, the quality ladder settings, the
 * recordings (switch, rename, delete), end-broadcast / enable-ingest, the schedule editor and
 * the analytics of past broadcasts.
 */
import { useEffect, useRef, useState } from "react";
import type { RefObject } from "react";
import { Link } from "react-router";
import { useApi } from "../api/context";
import { pageRtmpUrl, type Category, type Channel } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { CopyButton } from "../components/CopyButton";
import { TagsEditor } from "../components/TagsEditor";
import { ErrorBox, LiveBadge, Loading, messageOf, useTitle } from "../components/bits";
import {
  ActionStatus,
  Field,
  TextAreaField,
  useAction,
  useFocusOnToggle,
  type Action,
} from "../components/forms";
import {
  formatBitrate,
  formatFps,
  formatResolution,
  formatUptime,
  keyframeWarning,
} from "../lib/format";
import { addTags } from "../lib/tags";
import { useNow } from "../lib/useNow";
import { usePoll } from "../lib/usePoll";
import { RecordingsManager } from "../recordings/RecordingsManager";
import { AnalyticsPanel } from "./AnalyticsPanel";
import { ScheduleEditor } from "./ScheduleEditor";
import { LadderSettingsForm, StreamHealth } from "./StreamHealth";

export function Dashboard() {
  useTitle("Dashboard");
  const { me } = useAuth();
  if (!me) return <Loading />;
  return <DashboardFor username={me.username} />;
}

/**
 * Whether the stream key is accepted (`ingest_enabled`), from the channel poll and the stream-key
 * answer, and changed by the end/enable buttons. A poll that was already on its way when a
 * button changed it answers with the old value: such answers are ignored.
 */
function useIngestState() {
  const [enabled, setEnabled] = useState<boolean | undefined>(undefined);
  const generation = useRef(0);
  return {
    enabled,
    /** Call before a request that reports the flag; pass its result to `observed`. */
    stamp: () => generation.current,
    observed(value: boolean | undefined, stamp: number): void {
      if (value !== undefined && stamp === generation.current) setEnabled(value);
    },
    changed(value: boolean): void {
      generation.current += 1;
      setEnabled(value);
    },
  };
}

function DashboardFor({ username }: { username: string }) {
  const api = useApi();
  const [channel, setChannel] = useState<Channel | null>(null);
  const [statusError, setStatusError] = useState("");
  const ingest = useIngestState();

  usePoll(
    async (signal) => {
      const stamp = ingest.stamp();
      try {
        const c = await api.channel(username, signal);
        if (signal.aborted) return;
        setChannel(c);
        ingest.observed(c.ingest_enabled, stamp);
        setStatusError("");
      } catch (e) {
        if (!signal.aborted) setStatusError(messageOf(e));
      }
    },
    3000,
    username,
  );

  return (
    <div className="page dashboard">
      <h1>Dashboard</h1>
      <div className="dash-grid">
        <LiveStatus
          username={username}
          channel={channel}
          error={statusError}
          ingestEnabled={ingest.enabled}
          onIngestChange={ingest.changed}
        />
        {channel && (
          <StreamHealth
            name={username}
            live={channel.live}
            broadcast={String(channel.stream?.id ?? "")}
          />
        )}
        <ObsSetup onIngestKnown={(enabled, stamp) => ingest.observed(enabled, stamp)} stamp={ingest.stamp} />
        {channel && <StreamInfoEditor channel={channel} onSaved={setChannel} />}
        {channel?.ladder && <LadderSettingsForm channel={channel} onSaved={setChannel} />}
        <RecordingsManager username={username} />
      </div>
      {channel && <ScheduleEditor username={username} channel={channel} />}
      <AnalyticsPanel />
    </div>
  );
}

const ENDED_MESSAGE =
  "Broadcast ended. Your key is held off until you enable ingest again, so OBS cannot reconnect by itself.";

/**
 * The one ingest button that fits the state: *End broadcast* while live, *Enable ingest* while
 * the key is held off, none otherwise. It is one element (never disabled, which would drop focus),
 * so keyboard focus stays on it when its action flips; when it goes away focus moves to the
 * section heading.
 */
function IngestButton({
  live,
  ingestEnabled,
  onIngestChange,
  action,
  headingRef,
}: {
  live: boolean;
  ingestEnabled: boolean | undefined;
  onIngestChange: (enabled: boolean) => void;
  action: Action;
  headingRef: RefObject<HTMLHeadingElement | null>;
}) {
  const api = useApi();
  const mode = ingestEnabled === false ? "enable" : live ? "end" : null;
  const button = useRef<HTMLButtonElement>(null);
  const hadFocus = useRef(false);
  useEffect(() => {
    if (mode === null && hadFocus.current) headingRef.current?.focus();
    hadFocus.current = false;
  }, [mode, headingRef]);
  if (mode === null) return null;
  const enable = mode === "enable";
  const act = (): void => {
    if (action.busy) return;
    hadFocus.current = document.activeElement === button.current;
    void action.run(async () => {
      await api.setIngest(enable);
      onIngestChange(enable);
      return enable ? "Ingest enabled: you can go live again." : ENDED_MESSAGE;
    });
  };
  return (
    <div className="actions">
      <button
        type="button"
        className={enable ? "btn btn-primary" : "btn btn-danger"}
        aria-disabled={action.busy}
        ref={button}
        data-testid="ingest-button"
        onClick={act}
      >
        {enable ? "Enable ingest" : "End broadcast"}
      </button>
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
  const action = useAction();
  const now = useNow();
  const heading = useRef<HTMLHeadingElement>(null);
  const stats = channel?.stream?.stats ?? null;
  const warning = keyframeWarning(stats?.keyframe_interval_s ?? null);

  return (
    <section className="card dash-status" aria-labelledby="status-heading">
      <h2 id="status-heading" ref={heading} tabIndex={-1}>
        Stream status
      </h2>
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
                  ` for ${formatUptime(channel.stream.started_at, now)}`}
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
          <IngestButton
            live={channel.live}
            ingestEnabled={ingestEnabled}
            onIngestChange={onIngestChange}
            action={action}
            headingRef={heading}
          />
        </div>
      )}
      {ingestEnabled === false && !action.message && (
        <p className="warning" data-testid="ingest-held">
          Ingest is held off: OBS cannot go live until you enable it.
        </p>
      )}
      <ActionStatus action={action} />
    </section>
  );
}

function ObsSetup({
  onIngestKnown,
  stamp,
}: {
  onIngestKnown: (enabled: boolean | undefined, stamp: number) => void;
  stamp: () => number;
}) {
  const api = useApi();
  const [serverUrl, setServerUrl] = useState(() => pageRtmpUrl(window.location.hostname));
  const [key, setKey] = useState<string | null>(null);
  const [confirmRotate, setConfirmRotate] = useState(false);
  const action = useAction();
  const showButton = useRef<HTMLButtonElement>(null);
  const keyInput = useRef<HTMLInputElement>(null);
  const rotateButton = useRef<HTMLButtonElement>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  // keyboard focus follows what replaced the pressed button
  useFocusOnToggle(key !== null, keyInput, showButton);
  useFocusOnToggle(confirmRotate, confirmButton, rotateButton);

  useEffect(() => {
    const controller = new AbortController();
    api
      .serverInfo(controller.signal)
      .then((info) => {
        if (!controller.signal.aborted) setServerUrl(info.rtmp_url);
      })
      .catch(() => undefined); // unreachable: keep the page's host
    return () => controller.abort();
  }, [api]);

  /** Read the key (GET) or make a new one (POST); both answers carry the key and the flag. */
  async function fetchKey(rotate: boolean): Promise<void> {
    const at = stamp();
    const answer = await api.streamKey(rotate);
    setKey(answer.stream_key);
    setServerUrl(answer.rtmp_url);
    onIngestKnown(answer.ingest_enabled, at);
  }

  const reveal = (): void => void action.run(() => fetchKey(false));
  const rotate = (): void =>
    void action.run(async () => {
      await fetchKey(true);
      setConfirmRotate(false);
      return "New key made. The old key no longer works: paste the new one into OBS.";
    });

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
            <button
              ref={showButton}
              type="button"
              className="btn btn-small"
              onClick={reveal}
              disabled={action.busy}
            >
              Show key
            </button>
          </>
        ) : (
          <>
            <input
              ref={keyInput}
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
          <div className="actions">
            <button
              ref={confirmButton}
              type="button"
              className="btn btn-danger"
              onClick={rotate}
              disabled={action.busy}
            >
              Make a new key
            </button>
            <button type="button" className="btn" onClick={() => setConfirmRotate(false)}>
              Cancel
            </button>
          </div>
        </div>
      ) : (
        <button ref={rotateButton} type="button" className="btn" onClick={() => setConfirmRotate(true)}>
          Rotate key…
        </button>
      )}
      <ActionStatus action={action} />
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
  const [category, setCategory] = useState(channel.category_slug ?? "");
  const [tags, setTags] = useState(channel.tags);
  const [pendingTag, setPendingTag] = useState("");
  const [description, setDescription] = useState(channel.description);
  const categories = useCategories();
  const api = useApi();
  const action = useAction();

  const save = action.submit(async () => {
    // a tag still in the box is saved too
    const added = addTags(tags, pendingTag);
    if (added.error) throw new Error(added.error);
    const updated = await api.patchChannel(channel.name, {
      title: title.trim(),
      category: category || null,
      tags: added.tags,
      description,
    });
    setTags(updated.tags);
    setPendingTag("");
    onSaved(updated);
    return "Saved.";
  });

  return (
    <section className="card dash-info" aria-labelledby="info-heading">
      <h2 id="info-heading">Stream info</h2>
      <p className="muted small">Changes reach your viewers at once, live or not.</p>
      <form className="form" onSubmit={save}>
        <Field id="info-title" label="Title" maxLength={140} value={title} onValue={setTitle} />
        <label htmlFor="info-category">Category</label>
        <select
          id="info-category"
          value={category}
          onChange={(e) => setCategory(e.target.value)}
          aria-describedby={categories.error ? "info-category-error" : undefined}
        >
          <option value="">No category</option>
          {/* the saved one, even before the list arrives */}
          {channel.category_slug && !categories.list.some((c) => c.slug === channel.category_slug) && (
            <option value={channel.category_slug}>{channel.category}</option>
          )}
          {categories.list.map((c) => (
            <option key={c.slug} value={c.slug}>
              {c.name}
            </option>
          ))}
        </select>
        {categories.error && (
          <p id="info-category-error" className="help">
            Could not load the categories: {categories.error}
          </p>
        )}
        <TagsEditor id="info-tags" tags={tags} onTags={setTags} pending={pendingTag} onPending={setPendingTag} />
        <TextAreaField
          id="info-description"
          label="Description"
          rows={4}
          maxLength={2000}
          value={description}
          onValue={setDescription}
        />
        <button type="submit" className="btn btn-primary" disabled={action.busy}>
          {action.busy ? "Saving…" : "Save"}
        </button>
        <ActionStatus action={action} />
      </form>
    </section>
  );
}

/** The categories a channel may pick, by name. */
function useCategories(): { list: Category[]; error: string } {
  const api = useApi();
  const [state, setState] = useState<{ list: Category[]; error: string }>({ list: [], error: "" });
  useEffect(() => {
    const controller = new AbortController();
    api
      .categories(controller.signal)
      .then((answer) => {
        const list = [...answer.categories].sort((a, b) => a.name.localeCompare(b.name));
        setState({ list, error: "" });
      })
      .catch((e: unknown) => {
        if (!controller.signal.aborted) setState({ list: [], error: messageOf(e) });
      });
    return () => controller.abort();
  }, [api]);
  return state;
}
