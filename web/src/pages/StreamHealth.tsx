/**
 * The dashboard's stream health panel (polls the health API every 2 s while live: graphs of the
 * last two minutes of ingest bitrate, frame rate, and each rendition's encode speed and dropped
 * frames, plus the ladder's state and why) and the quality ladder settings form.
 */
import { useState } from "react";
import { useApi } from "../api/context";
import type { Channel, ChannelHealth, HealthRendition, LadderRung } from "../api/types";
import { ErrorBox, messageOf } from "../components/bits";
import { ActionStatus, useAction } from "../components/forms";
import { Sparkline } from "../components/Sparkline";
import { formatBitrate, formatFps, formatResolution } from "../lib/format";
import {
  addSample,
  formatSpeed,
  HEALTH_POLL_MS,
  LADDER_RUNGS,
  ladderState,
  series,
  SLOW_SPEED,
  type HealthSample,
} from "../lib/health";
import { usePoll } from "../lib/usePoll";

/** The panel; it polls only while `live` (the channel's flag), restarting its graphs per broadcast. */
export function StreamHealth({ name, live, broadcast }: { name: string; live: boolean; broadcast: string }) {
  return (
    <section className="card dash-health" aria-labelledby="health-heading">
      <h2 id="health-heading">Stream health</h2>
      {live ? (
        <LiveHealth key={`${name}\n${broadcast}`} name={name} />
      ) : (
        <p className="muted" data-testid="health-offline">
          Health figures and graphs appear here while you are live.
        </p>
      )}
    </section>
  );
}

function LiveHealth({ name }: { name: string }) {
  const api = useApi();
  const [health, setHealth] = useState<ChannelHealth | null>(null);
  const [history, setHistory] = useState<HealthSample[]>([]);
  const [error, setError] = useState("");

  usePoll(
    async (signal) => {
      try {
        const answer = await api.channelHealth(name, signal);
        if (signal.aborted) return;
        const at = Date.now();
        setHealth(answer);
        setHistory((h) => addSample(h, answer, at));
        setError("");
      } catch (e) {
        if (!signal.aborted) setError(messageOf(e));
      }
    },
    HEALTH_POLL_MS,
    name,
  );

  const end = history.at(-1)?.at ?? 0;
  const ingest = series(history, (s) => s.bitrateKbps);
  const fps = series(history, (s) => s.fps);
  return (
    <div data-testid="stream-health">
      <ErrorBox>{error && `Could not read the stream health: ${error}`}</ErrorBox>
      {health === null ? (
        !error && <p role="status">Reading…</p>
      ) : !health.live ? (
        <p className="muted">The server has no live stream from you right now.</p>
      ) : (
        <>
          {health.ladder && (
            <p
              className={health.ladder.state === "running" ? "ladder-state" : "ladder-state warning"}
              data-testid="ladder-state"
              data-state={health.ladder.state}
            >
              <strong>Quality ladder:</strong> {ladderState(health)}
            </p>
          )}
          <div className="spark-grid">
            <Sparkline
              label="Ingest bitrate"
              series={ingest}
              end={end}
              format={formatBitrate}
              floor={500}
              testId="spark-bitrate"
            />
            <Sparkline
              label="Frame rate"
              series={fps}
              end={end}
              format={(v) => (v === null ? "–" : `${formatFps(Math.round(v * 100) / 100)} fps`)}
              floor={30}
              testId="spark-fps"
            />
          </div>
          <h3>Renditions</h3>
          <ul className="renditions">
            {(health.renditions ?? []).map((r) => (
              <Rendition key={r.name} rendition={r} history={history} end={end} />
            ))}
          </ul>
        </>
      )}
    </div>
  );
}

function Rendition({ rendition: r, history, end }: { rendition: HealthRendition; history: HealthSample[]; end: number }) {
  const speed = series(history, (s) => s.renditions[r.name]?.encodeSpeed ?? null);
  const dropped = series(history, (s) => s.renditions[r.name]?.droppedDelta ?? null);
  const slow = r.encode_speed !== null && r.encode_speed < SLOW_SPEED;
  const encoded = r.name !== "source";
  return (
    <li className="rendition" data-testid={`rendition-${r.name}`}>
      <h4>
        {r.name}{" "}
        <span className="muted small">
          {formatResolution(r.width, r.height)} · {formatBitrate(r.bitrate_kbps)}
          {r.fps !== null && ` · ${formatFps(Math.round(r.fps * 100) / 100)} fps`}
        </span>
      </h4>
      {r.error && (
        <p className="warning" data-testid={`rendition-error-${r.name}`}>
          {r.error}
        </p>
      )}
      {encoded && (
        <div className="spark-grid">
          <Sparkline
            label={`${r.name} encode speed`}
            series={speed}
            end={end}
            format={(v) => formatSpeed({ name: r.name, encode_speed: v })}
            floor={1.5}
            reference={SLOW_SPEED}
            warn={slow}
            testId={`spark-speed-${r.name}`}
          />
          <Sparkline
            label={`${r.name} dropped frames per ${HEALTH_POLL_MS / 1000} s`}
            series={dropped}
            end={end}
            format={(v) => (v === null ? "–" : String(v))}
            floor={5}
            warn={(dropped.values.at(-1) ?? 0) > 0}
            testId={`spark-dropped-${r.name}`}
          />
        </div>
      )}
      <dl className="stats stats-inline">
        <dt>Encode speed</dt>
        <dd>{formatSpeed(r)}</dd>
        <dt>Dropped frames</dt>
        <dd>{r.dropped_frames ?? "–"}</dd>
        <dt>Restarts</dt>
        <dd>{r.restarts ?? "–"}</dd>
        {encoded && (
          <>
            <dt>CPU time</dt>
            <dd>{r.cpu_seconds === null ? "–" : `${r.cpu_seconds.toFixed(1)} s`}</dd>
          </>
        )}
      </dl>
    </li>
  );
}

/** The owner's ladder settings (on/off, which rungs); saved with PATCH, applied at the next broadcast. */
export function LadderSettingsForm({ channel, onSaved }: { channel: Channel; onSaved: (c: Channel) => void }) {
  const api = useApi();
  const action = useAction();
  const [enabled, setEnabled] = useState(channel.ladder?.enabled ?? true);
  const [rungs, setRungs] = useState<LadderRung[]>(channel.ladder?.rungs ?? [...LADDER_RUNGS]);

  const toggle = (rung: LadderRung, on: boolean): void =>
    setRungs((now) => LADDER_RUNGS.filter((r) => (r === rung ? on : now.includes(r))));

  const save = action.submit(async () => {
    const updated = await api.patchChannel(channel.name, { ladder: { enabled, rungs } });
    onSaved(updated);
    return "Saved. The new ladder applies from your next broadcast.";
  });

  return (
    <section className="card dash-ladder" aria-labelledby="ladder-heading">
      <h2 id="ladder-heading">Quality ladder</h2>
      <p className="help" id="ladder-help">
        Kitch can re-encode your stream into lower qualities, so viewers on phones and slow links can
        watch without stalling. Qualities at or above your source's height are skipped. Changes apply
        from your next broadcast.
      </p>
      <form className="form" onSubmit={save} aria-describedby="ladder-help" data-testid="ladder-form">
        <div className="check">
          <input
            id="ladder-enabled"
            type="checkbox"
            checked={enabled}
            onChange={(e) => setEnabled(e.target.checked)}
          />
          <label htmlFor="ladder-enabled">Offer lower qualities (transcode)</label>
        </div>
        <fieldset className="checks" disabled={!enabled}>
          <legend>Qualities to offer besides the source</legend>
          {LADDER_RUNGS.map((rung) => (
            <div className="check" key={rung}>
              <input
                id={`ladder-rung-${rung}`}
                type="checkbox"
                checked={rungs.includes(rung)}
                onChange={(e) => toggle(rung, e.target.checked)}
              />
              <label htmlFor={`ladder-rung-${rung}`}>{rung}</label>
            </div>
          ))}
        </fieldset>
        {enabled && rungs.length === 0 && (
          <p className="help" data-testid="ladder-none">
            No quality chosen: viewers get the source quality only.
          </p>
        )}
        <button type="submit" className="btn btn-primary" disabled={action.busy}>
          {action.busy ? "Saving…" : "Save quality ladder"}
        </button>
        <ActionStatus action={action} />
      </form>
    </section>
  );
}
