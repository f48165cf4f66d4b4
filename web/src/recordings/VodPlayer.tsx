/**
 * The recording player: hls.js on the recording's VOD playlist (native HLS where hls.js cannot
 * run), with the browser's own controls, so the seek bar, keyboard seeking and fullscreen work
 * as on any video. A recording still being written is an EVENT playlist: hls.js plays it from
 * the start and keeps loading what is added.
 */
import Hls from "hls.js";
import { useEffect, useRef, useState } from "react";

export interface VodPlayerProps {
  /** The recording's playlist, `/vod/{id}/index.m3u8`. */
  src: string;
  title: string;
}

/** hls.js for VOD: a regular buffer ahead of the playhead, no low-latency mode. */
export const VOD_HLS_CONFIG = {
  lowLatencyMode: false,
  enableWorker: true,
  startPosition: 0,
  maxBufferLength: 30,
  backBufferLength: 60,
} as const;

export function VodPlayer({ src, title }: VodPlayerProps) {
  const videoRef = useRef<HTMLVideoElement>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    const video = videoRef.current;
    if (!video) return;
    setError("");
    if (Hls.isSupported()) {
      const hls = new Hls({ ...VOD_HLS_CONFIG });
      let mediaRecoveries = 0;
      hls.on(Hls.Events.ERROR, (_e, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 2) {
          mediaRecoveries += 1;
          hls.recoverMediaError();
        } else if (data.type === Hls.ErrorTypes.NETWORK_ERROR) {
          setError("The recording could not be loaded. It may have been deleted.");
          hls.destroy();
        } else {
          setError(`Playback failed (${data.details}).`);
          hls.destroy();
        }
      });
      hls.loadSource(src);
      hls.attachMedia(video);
      return () => hls.destroy();
    }
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = src;
      return () => {
        video.removeAttribute("src");
        video.load();
      };
    }
    setError("This browser cannot play HLS video.");
    return undefined;
  }, [src]);

  return (
    <div className="player vod-player">
      <video
        ref={videoRef}
        className="player-video"
        data-testid="vod-video"
        controls
        playsInline
        preload="metadata"
        aria-label={title}
      />
      {error && (
        <p className="player-message" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
