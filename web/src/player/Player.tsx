/**
 * The live player: hls.js in low-latency mode (native HLS where hls.js cannot run, e.g. iOS),
 * muted autoplay with an obvious unmute, a quality menu, a "behind live" figure with
 * jump-to-live, and recovery from network errors (retry every `retryDelayMs`, default 3 s).
 */
import Hls, { type ErrorData, type Level } from "hls.js";
import { useCallback, useEffect, useReducer, useRef } from "react";
import { serverClock } from "../api/clock";
import {
  behindLiveSeconds,
  JUMP_TO_LIVE_THRESHOLD_S,
  nativePlayingDate,
} from "../lib/behindLive";
import { formatBehind, levelLabel } from "../lib/format";
import {
  initialPlayerState,
  OFFLINE_TEXT,
  playerReducer,
  RECONNECTING_TEXT,
  UNSUPPORTED_TEXT,
  type QualityLevel,
} from "./state";

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

/**
 * Seconds of media buffered ahead of the playhead above which a quality switch flushes the
 * buffer past the next fragment (hls.js `nextLevel`) instead of letting it play out.
 */
export const FLUSH_SWITCH_BUFFER_S = 6;

/** Seconds buffered ahead of the playhead (0 when the playhead is in no buffered range). */
export function bufferedAhead(video: HTMLMediaElement): number {
  const t = video.currentTime;
  const ranges = video.buffered;
  for (let i = 0; i < ranges.length; i += 1) {
    if (ranges.start(i) <= t + 0.1 && t <= ranges.end(i)) return ranges.end(i) - t;
  }
  return 0;
}

/** HTTP answers that mean "no such stream (now)", not "the connection failed". */
const OFFLINE_STATUSES = new Set([404, 410]);

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
  const [state, dispatch] = useReducer(playerReducer, initialPlayerState);
  const { attempt, status, message, muted, paused, levels, selected, playingLevel, behind } = state;
  // the viewer's quality choice, for the next hls.js instance (set by chooseLevel)
  const selectedRef = useRef(-1);

  // (Re)load the source: on mount, when src changes and on each reconnection attempt.
  useEffect(() => {
    const video = videoRef.current;
    if (!video) return;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let mediaRecoveries = 0;
    let disposed = false;
    video.muted = true;
    dispatch({ type: "load" });

    const retry = (problem: "offline" | "network"): void => {
      if (disposed) return;
      dispatch({ type: "failed", problem });
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => dispatch({ type: "retry" }), retryDelayMs);
    };
    const tryPlay = (): void => {
      void video.play().catch(() => {
        // autoplay refused even muted: the big play button stays visible
        dispatch({ type: "paused", paused: true });
      });
    };

    if (Hls.isSupported()) {
      const hls = new Hls({ ...HLS_CONFIG });
      hlsRef.current = hls;
      hls.on(Hls.Events.MANIFEST_PARSED, (_e, data) => {
        const chosen = selectedRef.current;
        if (chosen >= 0 && chosen < data.levels.length) hls.loadLevel = chosen;
        else selectedRef.current = -1;
        dispatch({ type: "manifest", levels: toQualityLevels(data.levels) });
        tryPlay();
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, (_e, data) =>
        dispatch({ type: "levelSwitched", index: data.level }),
      );
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
          dispatch({ type: "fatal", message: `Playback failed (${data.details}).` });
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
      dispatch({ type: "fatal", message: UNSUPPORTED_TEXT });
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
      playing: () => dispatch({ type: "playing" }),
      // ENDLIST reached: the broadcast is over (the channel page mounts a new player for the next)
      ended: () => dispatch({ type: "ended" }),
      waiting: () => dispatch({ type: "waiting" }),
      pause: () => dispatch({ type: "paused", paused: true }),
      play: () => dispatch({ type: "paused", paused: false }),
      volumechange: () => dispatch({ type: "muted", muted: video.muted || video.volume === 0 }),
    };
    for (const [name, fn] of Object.entries(handlers)) video.addEventListener(name, fn);
    return () => {
      for (const [name, fn] of Object.entries(handlers)) video.removeEventListener(name, fn);
    };
  }, []);

  // The behind-live figure, twice a second (the reducer drops it while not playing).
  useEffect(() => {
    const id = setInterval(() => {
      const video = videoRef.current;
      if (!video) return;
      const hls = hlsRef.current;
      const date = hls ? hls.playingDate : nativePlayingDate(video);
      dispatch({ type: "behind", seconds: behindLiveSeconds(date, serverClock.now()) });
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
    dispatch({ type: "muted", muted: video.muted });
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
    dispatch({ type: "choose", index });
    const hls = hlsRef.current;
    if (!hls) return;
    const video = videoRef.current;
    // Never `currentLevel`: it empties the whole buffer and stalls. Near the live edge the
    // buffer ahead is a couple of seconds, so the new rendition simply comes in with the next
    // fragment loaded (`loadLevel`, nothing flushed); with a long buffer ahead (paused, or far
    // behind live) `nextLevel` flushes what lies past the next fragment so the switch shows
    // sooner. "Auto" (-1) hands the choice back to hls.js's bandwidth estimate.
    if (index >= 0 && video && bufferedAhead(video) > FLUSH_SWITCH_BUFFER_S) hls.nextLevel = index;
    else hls.loadLevel = index;
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
    <div
      className="player"
      ref={boxRef}
      data-state={status}
      data-level={playingLevel}
      data-level-label={playingLabel ?? ""}
    >
      <video
        ref={videoRef}
        className="player-video"
        aria-label={`${title} live video`}
        muted
        autoPlay
        playsInline
        onClick={togglePlay}
      />
      {status === "loading" && <div className="player-overlay" role="status">Loading stream…</div>}
      {status === "buffering" && <div className="player-overlay" role="status">Buffering…</div>}
      {status === "reconnecting" && (
        <div className="player-overlay" role="status" data-testid="player-reconnecting">
          {message || RECONNECTING_TEXT}
        </div>
      )}
      {status === "offline" && (
        <div className="player-overlay" role="status" data-testid="player-offline">
          {message || OFFLINE_TEXT}
        </div>
      )}
      {status === "error" && (
        <div className="player-overlay player-error" role="alert" data-testid="player-error">
          <p>{message || "Playback failed."}</p>
          <button type="button" className="btn" onClick={() => dispatch({ type: "retry" })}>
            Try again
          </button>
        </div>
      )}
      {muted && status !== "error" && status !== "offline" && (
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
