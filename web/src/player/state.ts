/**
 * The player's visible state as one reducer: what hls.js and the video element report goes in
 * as actions, what the viewer sees comes out. Pure, so every transition is unit-tested.
 */

/**
 * `loading` (first load), `playing`, `buffering` (a stall), `reconnecting` (the connection
 * failed; retried), `offline` (the server has no stream: a 404 for the playlist, retried, or the
 * broadcast ended) and `error` (playback cannot continue; a *Try again* button).
 */
export type PlayerStatus = "loading" | "playing" | "buffering" | "reconnecting" | "offline" | "error";

export interface QualityLevel {
  index: number;
  label: string;
  height: number;
}

export interface PlayerState {
  status: PlayerStatus;
  /** What the overlay says (empty: the status's default text). */
  message: string;
  /** Bumped to (re)load the source: each reconnection and *Try again*. */
  attempt: number;
  /** What the last attempt failed with: a retry after "offline" shows offline until it plays. */
  lastProblem: "offline" | "network" | null;
  muted: boolean;
  paused: boolean;
  levels: QualityLevel[];
  /** The viewer's quality choice (-1: automatic); kept across reconnections. */
  selected: number;
  /** The level hls.js plays now (-1: unknown). */
  playingLevel: number;
  /** Seconds behind live; null while not playing. */
  behind: number | null;
}

export const OFFLINE_TEXT = "The stream is offline. Playback starts again by itself when it is back.";
export const ENDED_TEXT = "The broadcast has ended.";
export const RECONNECTING_TEXT = "Connection lost. Reconnecting…";
export const UNSUPPORTED_TEXT = "This browser cannot play HLS video.";

export const initialPlayerState: PlayerState = {
  status: "loading",
  message: "",
  attempt: 0,
  lastProblem: null,
  muted: true,
  paused: false,
  levels: [],
  selected: -1,
  playingLevel: -1,
  behind: null,
};

export type PlayerAction =
  /** A (re)load of the source began (muted, as autoplay needs). */
  | { type: "load" }
  /** The attempt failed; the source is loaded again on `retry`. */
  | { type: "failed"; problem: "offline" | "network" }
  | { type: "retry" }
  /** Playback cannot continue (`message` says why); *Try again* sends `retry`. */
  | { type: "fatal"; message: string }
  | { type: "manifest"; levels: QualityLevel[] }
  | { type: "choose"; index: number }
  | { type: "levelSwitched"; index: number }
  | { type: "playing" }
  | { type: "ended" }
  | { type: "waiting" }
  | { type: "paused"; paused: boolean }
  | { type: "muted"; muted: boolean }
  | { type: "behind"; seconds: number | null };

export function playerReducer(state: PlayerState, action: PlayerAction): PlayerState {
  switch (action.type) {
    case "load": {
      const status =
        state.attempt === 0 ? "loading" : state.lastProblem === "offline" ? "offline" : "reconnecting";
      return { ...state, status, muted: true, behind: null };
    }
    case "failed":
      return {
        ...state,
        status: action.problem === "offline" ? "offline" : "reconnecting",
        message: action.problem === "offline" ? OFFLINE_TEXT : RECONNECTING_TEXT,
        lastProblem: action.problem,
        behind: null,
      };
    case "retry":
      return { ...state, attempt: state.attempt + 1 };
    case "fatal":
      return { ...state, status: "error", message: action.message, behind: null };
    case "manifest": {
      const keep = state.selected >= 0 && action.levels.some((l) => l.index === state.selected);
      return { ...state, levels: action.levels, selected: keep ? state.selected : -1 };
    }
    case "choose":
      return { ...state, selected: action.index };
    case "levelSwitched":
      return { ...state, playingLevel: action.index };
    case "playing":
      return { ...state, status: "playing", paused: false, message: "", lastProblem: null };
    case "ended":
      return { ...state, status: "offline", message: ENDED_TEXT, behind: null };
    case "waiting":
      return state.status === "playing" ? { ...state, status: "buffering" } : state;
    case "paused":
      return state.paused === action.paused ? state : { ...state, paused: action.paused };
    case "muted":
      return state.muted === action.muted ? state : { ...state, muted: action.muted };
    case "behind": {
      // a stale playhead date while offline or reconnecting means nothing
      const live = state.status === "playing" || state.status === "buffering";
      const behind = live ? action.seconds : null;
      return behind === state.behind ? state : { ...state, behind };
    }
  }
}
