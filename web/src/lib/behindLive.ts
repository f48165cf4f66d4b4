/** "Behind live": the server's clock minus the PROGRAM-DATE-TIME at the playhead. */

/**
 * Seconds behind live, or null when the playhead has no program date (nothing playing yet).
 * @param playingDate  wall-clock time of the frame at the playhead (hls.js `playingDate`)
 * @param serverNowMs  the server's current time in epoch ms
 */
export function behindLiveSeconds(playingDate: Date | null, serverNowMs: number): number | null {
  if (!playingDate) return null;
  const t = playingDate.getTime();
  if (!Number.isFinite(t) || t <= 0) return null;
  return Math.max(0, (serverNowMs - t) / 1000);
}

/** The program date at the playhead for native HLS (Safari): getStartDate() + currentTime. */
export function nativePlayingDate(video: HTMLVideoElement): Date | null {
  const v = video as HTMLVideoElement & { getStartDate?: () => Date };
  if (typeof v.getStartDate !== "function") return null;
  const start = v.getStartDate().getTime();
  if (!Number.isFinite(start) || start <= 0) return null;
  return new Date(start + video.currentTime * 1000);
}

/** Show the jump-to-live button when further behind than this many seconds (default 3). */
export const JUMP_TO_LIVE_THRESHOLD_S = 3;
