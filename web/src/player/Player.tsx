/**
 * The live player: hls.js in low-latency mode (native HLS where hls.js cannot run, e.g. iOS),
 * muted autoplay with an obvious unmute, a quality menu, a "behind live" figure with
 * jump-to-live, and recovery from network errors (retry every `retryDelayMs`, default 3 s).
 */
import Hls, { type ErrorData, type Level } from "hls.js";
import { useCallback, useEffect, useRef, useState } from "react";
import { serverClock } from "../api/clock";
import {
  behindLiveSeconds,
  JUMP_TO_LIVE_THRESHOLD_S,
  nativePlayingDate,
} from "../lib/behindLive";
import { formatBehind, levelLabel } from "../lib/format";

/**
 * What the viewer sees: `loading` (first load), `playing`, `buffering` (a stall), `reconnecting`
 * (the connection failed; retried every `retryDelayMs`), `offline` (the server has no stream: a
 * 404 for the playlist, retried, or the broadcast ended) and `error` (playback cannot continue;
 * a *Try again* button).
 */
export type PlayerState = "loading" | "playing" | "buffering" | "reconnecting" | "offline" | "error";

interface QualityLevel {
  index: number;
  label: string;
  height: number;
}

export interface PlayerProps {
  /** The master playlist URL, e.g. `/hls/alice/master.m3u8`. */
  src: string;
  /** Accessible name of the video, e.g. the channel's display name. */
  title: string;
  /** Delay between reconnection attempts after a fatal network error (default 3000 ms). */
  retryDelayMs?: number;
}

/**
 * hls.js settings: low latency, and a gentle catch-up after stalls: when behind its target
 * latency hls.js plays at up to 1.1x until it is back (its default, 1, never catches up).
 */
export const HLS_CONFIG = {
  lowLatencyMode: true,
  maxLiveSyncPlaybackRate: 1.1,
  liveDurationInfinity: true,
  backBufferLength: 30,
  enableWorker: true,
} as const;

/** HTTP answers that mean "no such stream (now)", not "the connection failed". */
const OFFLINE_STATUSES = new Set([404, 410]);

const OFFLINE_TEXT = "The stream is offline. Playback starts again by itself when it is back.";
const ENDED_TEXT = "The broadcast has ended.";
const RECONNECTING_TEXT = "Connection lost. Reconnecting…";

function toQualityLevels(levels: Level[]): QualityLevel[] {
  return levels
    .map((l, index) => ({ index, label: levelLabel(l), height: l.height || 0 }))
    .sort((a, b) => b.height - a.height);
}

export function Player({ src, title, retryDelayMs = 3000 }: PlayerProps) {
  const videoRef = useRef<HTMLVideoElement>(null);
  const boxRef = useRef<HTMLDivElement>(null);
  const hlsRef = useRef<Hls | null>(null);
  const muteRef = useRef<HTMLButtonElement>(null);
  const unmuteRef = useRef<HTMLButtonElement>(null);
  const [attempt, setAttempt] = useState(0);
  const [state, setState] = useState<PlayerState>("loading");
  const [errorText, setErrorText] = useState("");
  const [muted, setMuted] = useState(true);
  const [paused, setPaused] = useState(false);
  const [levels, setLevels] = useState<QualityLevel[]>([]);
  const [selected, setSelected] = useState(-1);
  // kept across reconnections: a new hls.js instance starts on the viewer's choice
  const selectedRef = useRef(-1);
  // what the last attempt ended with: a retry after "offline" stays offline until it plays
  const lastProblem = useRef<"offline" | "network" | null>(null);
  const stateRef = useRef<PlayerState>("loading");
  stateRef.current = state;
  const [playingLevel, setPlayingLevel] = useState(-1);
  const [behind, setBehind] = useState<number | null>(null);

  // (Re)load the source: on mount, when src changes and on each reconnection attempt.
  useEffect(() => {
    const video = videoRef.current;
    if (!video) return;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let mediaRecoveries = 0;
    let disposed = false;
    video.muted = true;
    setMuted(true);
    setState(attempt === 0 ? "loading" : lastProblem.current === "offline" ? "offline" : "reconnecting");

    const retry = (problem: "offline" | "network"): void => {
      if (disposed) return;
      lastProblem.current = problem;
      setState(problem === "offline" ? "offline" : "reconnecting");
      setErrorText(problem === "offline" ? OFFLINE_TEXT : RECONNECTING_TEXT);
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => setAttempt((n) => n + 1), retryDelayMs);
    };
    const tryPlay = (): void => {
      void video.play().catch(() => {
        // autoplay refused even muted: the big play button stays visible
        setPaused(true);
      });
    };

    if (Hls.isSupported()) {
      const hls = new Hls({ ...HLS_CONFIG });
      hlsRef.current = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        setLevels(toQualityLevels(data.levels));
        const chosen = selectedRef.current;
        if (chosen >= 0 && chosen < data.levels.length) hls.nextLevel = chosen;
        else {
          selectedRef.current = -1;
          setSelected(-1);
        }
        tryPlay();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) => setPlayingLevel(data.level));
      hls.on(Hls.Events.ERROR, (_e, data: ErrorData) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
          hls.destroy();
          hlsRef.current = null;
          retry(OFFLINE_STATUSES.has(data.response?.code ?? 0) ? "offline" : "network");
        } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
          mediaRecoveries += 1;
          if (mediaRecoveries === 2) hls.swapAudioCodec();
          hls.recoverMediaError();
        } else {
          hls.destroy();
          hlsRef.current = null;
          setState("error");
          setErrorText(`Playback failed (${data.details}).`);
        }
      });
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      // Safari / iOS: native HLS (it implements LL-HLS itself)
      const onError = (): void => retry("network");
      video.addEventListener("error", onError);
      video.src = src;
      tryPlay();
      return () => {
        disposed = true;
        clearTimeout(retryTimer);
        video.removeEventListener("error", onError);
        video.removeAttribute("src");
        video.load();
      };
    } else {
      setState("error");
      setErrorText("This browser cannot play HLS video.");
    }
    return () => {
      disposed = true;
      clearTimeout(retryTimer);
      hlsRef.current?.destroy();
      hlsRef.current = null;
    };
  }, [src, attempt, retryDelayMs]);

  // Video element events drive the visible state.
  useEffect(() => {
    const video = videoRef.current;
    if (!video) return;
    const handlers: Record<string, () => void> = {
      playing: () => {
        lastProblem.current = null;
        setState("playing");
        setPaused(false);
        setErrorText("");
      },
      // ENDLIST reached: the broadcast is over (the channel page mounts a new player for the next)
      ended: () => {
        setState("offline");
        setErrorText(ENDED_TEXT);
      },
      waiting: () => setState((s) => (s === "playing" ? "buffering" : s)),
      pause: () => setPaused(true),
      play: () => setPaused(false),
      volumechange: () => setMuted(video.muted || video.volume === 0),
    };
    for (const [name, fn] of Object.entries(handlers)) video.addEventListener(name, fn);
    return () => {
      for (const [name, fn] of Object.entries(handlers)) video.removeEventListener(name, fn);
    };
  }, []);

  // The behind-live figure, twice a second.
  useEffect(() => {
    const id = setInterval(() => {
      const video = videoRef.current;
      if (!video) return;
      if (stateRef.current !== "playing" && stateRef.current !== "buffering") {
        setBehind(null); // a stale playhead date while offline or reconnecting means nothing
        return;
      }
      const hls = hlsRef.current;
      const date = hls ? hls.playingDate : nativePlayingDate(video);
      setBehind(behindLiveSeconds(date, serverClock.now()));
    }, 500);
    return () => clearInterval(id);
  }, []);

  const toggleMute = useCallback(() => {
    const video = videoRef.current;
    if (!video) return;
    // the big unmute button goes away: keep keyboard focus on the mute control instead
    const fromOverlay = document.activeElement === unmuteRef.current;
    video.muted = !video.muted;
    if (!video.muted && video.volume === 0) video.volume = 1;
    setMuted(video.muted);
    if (fromOverlay) muteRef.current?.focus();
    if (video.paused) void video.play().catch(() => undefined);
  }, []);

  const togglePlay = useCallback(() => {
    const video = videoRef.current;
    if (!video) return;
    if (video.paused) void video.play().catch(() => undefined);
    else video.pause();
  }, []);

  const jumpToLive = useCallback(() => {
    const video = videoRef.current;
    if (!video) return;
    const hls = hlsRef.current;
    let target: number | null = hls?.liveSyncPosition ?? null;
    if (target === null && video.seekable.length > 0) {
      target = Math.max(0, video.seekable.end(video.seekable.length - 1) - 1);
    }
    if (target !== null && Number.isFinite(target)) video.currentTime = target;
    void video.play().catch(() => undefined);
  }, []);

  const chooseLevel = useCallback((index: number) => {
    selectedRef.current = index;
    setSelected(index);
    const hls = hlsRef.current;
    if (hls) hls.nextLevel = index; // -1 = automatic
  }, []);

  const fullscreen = useCallback(() => {
    const box = boxRef.current;
    if (!box) return;
    if (document.fullscreenElement) void document.exitFullscreen();
    else if (box.requestFullscreen) void box.requestFullscreen().catch(() => undefined);
    else (videoRef.current as { webkitEnterFullscreen?: () => void } | null)?.webkitEnterFullscreen?.();
  }, []);

  const playingLabel = levels.find((l) => l.index === playingLevel)?.label;
  const showJump = behind !== null && behind > JUMP_TO_LIVE_THRESHOLD_S;

  return (
    <div className="player" ref={boxRef} data-state={state}>
      <video
        ref={videoRef}
        className="player-video"
        aria-label={`${title} live video`}
        muted
        autoPlay
        playsInline
        onClick={togglePlay}
      />
      {state === "loading" && <div className="player-overlay" role="status">Loading stream…</div>}
      {state === "buffering" && <div className="player-overlay" role="status">Buffering…</div>}
      {state === "reconnecting" && (
        <div className="player-overlay" role="status" data-testid="player-reconnecting">
          {errorText || RECONNECTING_TEXT}
        </div>
      )}
      {state === "offline" && (
        <div className="player-overlay" role="status" data-testid="player-offline">
          {errorText || OFFLINE_TEXT}
        </div>
      )}
      {state === "error" && (
        <div className="player-overlay player-error" role="alert" data-testid="player-error">
          <p>{errorText || "Playback failed."}</p>
          <button type="button" className="btn" onClick={() => setAttempt((n) => n + 1)}>
            Try again
          </button>
        </div>
      )}
      {muted && state !== "error" && state !== "offline" && (
        <button ref={unmuteRef} type="button" className="btn btn-primary player-unmute" onClick={toggleMute}>
          <MutedIcon /> Click to unmute
        </button>
      )}
      <div className="player-controls">
        <button type="button" className="btn btn-small" onClick={togglePlay}>
          {paused ? "Play" : "Pause"}
        </button>
        <button ref={muteRef} type="button" className="btn btn-small" onClick={toggleMute}>
          {muted ? "Unmute" : "Mute"}
        </button>
        <span
          className="player-behind"
          data-testid="behind-live"
          data-seconds={behind === null ? "" : behind.toFixed(2)}
          aria-live="off"
        >
          {behind === null ? "" : formatBehind(behind)}
        </span>
        {showJump && (
          <button type="button" className="btn btn-small btn-live" onClick={jumpToLive}>
            Jump to live
          </button>
        )}
        <span className="spacer" />
        {levels.length > 0 && (
          <label className="player-quality">
            <span className="visually-hidden">Quality</span>
            <select
              value={selected}
              onChange={(e) => chooseLevel(Number(e.target.value))}
              aria-label="Quality"
            >
              <option value={-1}>Auto{selected === -1 && playingLabel ? ` (${playingLabel})` : ""}</option>
              {levels.map((l) => (
                <option key={l.index} value={l.index}>
                  {l.label}
                </option>
              ))}
            </select>
          </label>
        )}
        <button type="button" className="btn btn-small" onClick={fullscreen}>
          Full screen
        </button>
      </div>
    </div>
  );
}

function MutedIcon() {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
      <path d="M4 9v6h4l5 4V5L8 9H4z" fill="currentColor" />
      <path d="M16 9l5 6M21 9l-5 6" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
    </svg>
  );
}
