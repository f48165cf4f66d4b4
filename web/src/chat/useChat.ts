/** The chat room of one channel: its socket, state and the actions the UI can take. */
import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import { serverClock } from "../api/clock";
import type { ChatClientFrame, ChatServerFrame } from "../api/community";
import { useApi } from "../api/context";
import { LiveSocket } from "./socket";
import { chatReducer, initialChat, type ChatState } from "./state";

export interface Chat {
  state: ChatState;
  /** Send a message; false when it could not be sent (not connected): keep the text. */
  say(text: string): boolean;
  /** A moderation or mode frame. */
  command(frame: Exclude<ChatClientFrame, { type: "say" }>): boolean;
  /** Fetch the page of history before the first message shown. */
  loadOlder(): Promise<void>;
}

/** Messages per page of older history. */
const PAGE = 50;

let nonces = 0;

/** `channel` null: no room (the channel is not known yet, or does not exist). */
export function useChat(channel: string | null): Chat {
  const api = useApi();
  const [state, dispatch] = useReducer(chatReducer, initialChat);
  const [socket, setSocket] = useState<LiveSocket<ChatServerFrame> | null>(null);
  const pending = useRef(new Map<string, string>());

  useEffect(() => {
    if (channel === null) return;
    const s = new LiveSocket<ChatServerFrame>({
      path: `/ws/chat/${encodeURIComponent(channel)}`,
      client: api,
      onFrame: (frame) =>
        dispatch({ type: "frame", frame, now: Date.now(), offset: serverClock.offsetMs(), pending: pending.current }),
      onStatus: (status) => dispatch({ type: "status", status }),
    });
    s.start();
    setSocket(s);
    return () => {
      s.stop();
      setSocket(null);
    };
  }, [api, channel]);

  const say = useCallback(
    (text: string): boolean => {
      const nonce = `n${++nonces}`;
      if (!socket?.send({ type: "say", text, nonce })) {
        dispatch({ type: "notice", notice: "Not connected: the message was not sent." });
        return false;
      }
      pending.current.set(nonce, text);
      // forget nonces the server never refused (kept small)
      if (pending.current.size > 50) pending.current.delete(pending.current.keys().next().value as string);
      return true;
    },
    [socket],
  );

  const command = useCallback(
    (frame: Exclude<ChatClientFrame, { type: "say" }>): boolean => {
      const ok = socket?.send(frame) ?? false;
      if (!ok) dispatch({ type: "notice", notice: "Not connected: try again in a moment." });
      return ok;
    },
    [socket],
  );

  const first = state.messages[0]?.id;
  const loadOlder = useCallback(async () => {
    if (channel === null || first === undefined) return;
    try {
      const answer = await api.chatHistory(channel, first, PAGE);
      dispatch({ type: "older", messages: answer.messages });
    } catch {
      dispatch({ type: "notice", notice: "Could not load earlier messages." });
    }
  }, [api, channel, first]);

  return { state, say, command, loadOlder };
}
