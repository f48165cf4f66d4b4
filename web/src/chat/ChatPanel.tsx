/**
 * The chat beside the player (below it on narrow screens): history and live messages, the room's
 * modes, a composer that shows the wait after a refusal, and moderation in place for moderators
 * and the broadcaster. Every name and text is rendered as React text, never as HTML.
 */
import { memo, useCallback, useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from "react";
import type { FormEvent, KeyboardEvent } from "react";
import { Link } from "react-router";
import type { ChatClientFrame, ChatMessage, RoomModes } from "../api/community";
import { useAuth } from "../auth/AuthContext";
import { BannedUsers, ModerationLog, Section } from "./Moderation";
import { TIMEOUTS } from "./moderation";
import { describeModes, describeSeconds } from "./state";
import type { Chat } from "./useChat";

export { TIMEOUTS };
export const SLOW_CHOICES = [0, 3, 5, 10, 30, 60, 120];
/** Followers-only minimum follow ages (null: off). */
export const FOLLOWER_CHOICES: Array<number | null> = [null, 0, 600, 3600, 86400, 604800];

type Command = Exclude<ChatClientFrame, { type: "say" }>;

export function ChatPanel({ channel, chat }: { channel: string; chat: Chat }) {
  const { state } = chat;
  const auth = useAuth();
  const moderator = state.you.role === "moderator" || state.you.role === "broadcaster";
  const modes = describeModes(state.modes);
  const [menuFor, setMenuFor] = useState<number | null>(null);

  return (
    <aside className="chat" aria-label="Chat">
      <div className="chat-head">
        <h2 className="chat-title">Chat</h2>
        {state.status !== "open" && (
          <span className="muted small" role="status">
            {state.status === "reconnecting" ? "Reconnecting…" : "Connecting…"}
          </span>
        )}
      </div>
      {modes && (
        <p className="chat-modes small" data-testid="chat-modes">
          {modes}
        </p>
      )}
      {moderator && (
        <ModeControls channel={channel} modes={state.modes} moderation={state.moderation} command={chat.command} />
      )}
      <ChatLog
        messages={state.messages}
        moderator={moderator}
        broadcaster={state.you.role === "broadcaster"}
        me={state.you.user}
        menuFor={menuFor}
        setMenuFor={setMenuFor}
        command={chat.command}
        older={state.older}
        loadOlder={chat.loadOlder}
      />
      {state.notice && (
        <p className="chat-notice small" role="status" data-testid="chat-notice">
          {state.notice}
        </p>
      )}
      {auth.status === "signed-in" ? (
        state.banned ? null : (
          <Composer chat={chat} />
        )
      ) : (
        <p className="chat-signin small" data-testid="chat-signin">
          <Link to={`/login?next=${encodeURIComponent(`/${channel}`)}`}>Sign in</Link> to chat.
        </p>
      )}
    </aside>
  );
}

function ChatLog({
  messages,
  moderator,
  broadcaster,
  me,
  menuFor,
  setMenuFor,
  command,
  older,
  loadOlder,
}: {
  older: boolean;
  loadOlder: () => Promise<void>;
  messages: ChatMessage[];
  moderator: boolean;
  broadcaster: boolean;
  me: string | null;
  menuFor: number | null;
  setMenuFor: (id: number | null) => void;
  command: (frame: Command) => boolean;
}) {
  const log = useRef<HTMLOListElement>(null);
  const lastId = messages.length ? messages[messages.length - 1]!.id : 0;
  // null: following the newest message; else the newest id when the reader scrolled up
  const [pausedAt, setPausedAt] = useState<number | null>(null);

  useLayoutEffect(() => {
    const el = log.current;
    if (el && pausedAt === null) el.scrollTop = el.scrollHeight;
  }, [lastId, messages.length, pausedAt]);

  // older messages come in above: the reader stays on what they were reading
  const fromBottom = useRef<number | null>(null);
  const firstId = messages[0]?.id;
  useLayoutEffect(() => {
    const el = log.current;
    if (el && fromBottom.current !== null) el.scrollTop = el.scrollHeight - fromBottom.current;
    fromBottom.current = null;
  }, [firstId]);
  const [loading, setLoading] = useState(false);
  const earlier = async () => {
    const el = log.current;
    if (el) fromBottom.current = el.scrollHeight - el.scrollTop;
    setLoading(true);
    try {
      await loadOlder();
    } finally {
      setLoading(false);
    }
  };

  // the log shrinking (room settings opened, the phone's keyboard) keeps the newest in view
  useEffect(() => {
    const el = log.current;
    if (!el || pausedAt !== null || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(() => {
      el.scrollTop = el.scrollHeight;
    });
    observer.observe(el);
    return () => observer.disconnect();
  }, [pausedAt]);

  const onScroll = () => {
    const el = log.current;
    if (!el) return;
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
    if (atBottom) setPausedAt(null);
    else if (pausedAt === null) setPausedAt(lastId);
  };

  return (
    <div className="chat-log-wrap">
      <ol className="chat-log" ref={log} onScroll={onScroll} role="log" aria-label="Chat messages" data-testid="chat-log">
        {messages.length === 0 && <li className="muted small chat-empty">No messages yet.</li>}
        {older && messages.length > 0 && (
          <li className="chat-earlier">
            <button type="button" className="btn btn-small" disabled={loading} onClick={() => void earlier()}>
              {loading ? "Loading…" : "Load earlier messages"}
            </button>
          </li>
        )}
        {messages.map((m) => (
          <MessageRow
            key={m.id}
            message={m}
            canModerate={moderator && m.user.role !== "broadcaster" && m.user.name !== me}
            canPromote={broadcaster}
            open={menuFor === m.id}
            setMenuFor={setMenuFor}
            command={command}
          />
        ))}
      </ol>
      {pausedAt !== null && lastId !== pausedAt && (
        <button
          type="button"
          className="btn btn-small chat-more"
          onClick={() => {
            const el = log.current;
            if (el) el.scrollTop = el.scrollHeight;
            setPausedAt(null);
          }}
        >
          New messages ↓
        </button>
      )}
    </div>
  );
}

const MessageRow = memo(function MessageRow({
  message,
  canModerate,
  canPromote,
  open,
  setMenuFor,
  command,
}: {
  message: ChatMessage;
  canModerate: boolean;
  /** The broadcaster can make the author a moderator, or take that back. */
  canPromote: boolean;
  open: boolean;
  setMenuFor: (id: number | null) => void;
  command: (frame: Command) => boolean;
}) {
  const { user } = message;
  const act = (frame: Command) => {
    command(frame);
    setMenuFor(null);
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === "Escape") setMenuFor(null);
  };
  return (
    <li className={`chat-message${open ? " is-open" : ""}`} data-testid="chat-message" onKeyDown={onKey}>
      <span className="chat-name" style={user.color ? { color: user.color } : undefined}>
        {user.display_name}
      </span>
      {user.role === "broadcaster" && <span className="chat-role small"> (broadcaster)</span>}
      {user.role === "moderator" && <span className="chat-role small"> (mod)</span>}
      <span className="chat-sep">: </span>
      <span className="chat-text">{message.text}</span>
      {canModerate && (
        <button
          type="button"
          className="chat-mod-button"
          aria-label={`Moderate ${user.display_name}'s message`}
          aria-expanded={open}
          onClick={() => setMenuFor(open ? null : message.id)}
        >
          ⋯
        </button>
      )}
      {canModerate && open && (
        <div
          className="chat-mod-menu"
          role="group"
          aria-label={`Moderate ${user.display_name}`}
          ref={(el) => el?.scrollIntoView?.({ block: "nearest" })}
        >
          <button type="button" className="btn btn-small" onClick={() => act({ type: "delete", id: message.id })}>
            Delete
          </button>
          {TIMEOUTS.map((s) => (
            <button
              key={s}
              type="button"
              className="btn btn-small"
              onClick={() => act({ type: "timeout", user: user.name, seconds: s, reason: "" })}
            >
              Timeout {describeSeconds(s)}
            </button>
          ))}
          <button
            type="button"
            className="btn btn-small btn-danger"
            onClick={() => act({ type: "ban", user: user.name, reason: "" })}
          >
            Ban
          </button>
          {canPromote && (
            <button
              type="button"
              className="btn btn-small"
              onClick={() => act({ type: user.role === "moderator" ? "unmod" : "mod", user: user.name })}
            >
              {user.role === "moderator" ? "Remove moderator" : "Make moderator"}
            </button>
          )}
        </div>
      )}
    </li>
  );
});

function ModeControls({
  channel,
  modes,
  moderation,
  command,
}: {
  channel: string;
  modes: RoomModes;
  /** Changes after each moderation frame: the lists below fetch again. */
  moderation: number;
  command: (frame: Command) => boolean;
}) {
  return (
    <details className="chat-settings small">
      <summary>Room settings</summary>
      <label>
        Slow mode{" "}
        <select
          value={modes.slow}
          onChange={(e) => command({ type: "mode", slow: Number(e.target.value), followers_only: modes.followers_only })}
        >
          {SLOW_CHOICES.map((s) => (
            <option key={s} value={s}>
              {s === 0 ? "Off" : `${s} s`}
            </option>
          ))}
        </select>
      </label>
      <label>
        Followers only{" "}
        <select
          value={modes.followers_only === null ? "off" : String(modes.followers_only)}
          onChange={(e) =>
            command({
              type: "mode",
              slow: modes.slow,
              followers_only: e.target.value === "off" ? null : Number(e.target.value),
            })
          }
        >
          {FOLLOWER_CHOICES.map((s) => (
            <option key={String(s)} value={s === null ? "off" : String(s)}>
              {s === null ? "Off" : s === 0 ? "Any follower" : `Following ${describeSeconds(s)}`}
            </option>
          ))}
        </select>
      </label>
      <button type="button" className="btn btn-small" onClick={() => command({ type: "clear" })}>
        Clear chat
      </button>
      <Section title="Banned users">
        {() => <BannedUsers key={channel} channel={channel} moderation={moderation} command={command} />}
      </Section>
      <Section title="Moderation log">
        {() => <ModerationLog key={channel} channel={channel} moderation={moderation} />}
      </Section>
    </details>
  );
}

/** Seconds left until `until` (client epoch ms), re-read four times a second while positive. */
function useSecondsLeft(until: number): number {
  const subscribe = useCallback(
    (changed: () => void) => {
      const id = setInterval(changed, 250);
      const stop = setTimeout(() => clearInterval(id), Math.max(0, until - Date.now()) + 1000);
      return () => {
        clearInterval(id);
        clearTimeout(stop);
      };
    },
    [until],
  );
  return useSyncExternalStore(subscribe, () => Math.max(0, Math.ceil((until - Date.now()) / 1000)));
}

function Composer({ chat }: { chat: Chat }) {
  const { state } = chat;
  const [text, setText] = useState("");
  const [seenRefusal, setSeenRefusal] = useState(state.refused?.seq ?? 0);
  // a refused message comes back into the input (unless the user already typed another)
  if (state.refused && state.refused.seq !== seenRefusal) {
    setSeenRefusal(state.refused.seq);
    if (!text) setText(state.refused.text);
  }
  const left = useSecondsLeft(state.waitUntil);
  const timedOut = left > 0 && state.timedOutUntil >= state.waitUntil;

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = text.trim();
    if (!t || left > 0) return;
    if (chat.say(t)) setText("");
  };

  return (
    <form className="chat-composer" onSubmit={submit}>
      <label className="visually-hidden" htmlFor="chat-input">
        Message
      </label>
      <input
        id="chat-input"
        className="chat-input"
        value={text}
        maxLength={500}
        autoComplete="off"
        placeholder={timedOut ? "You are timed out" : "Send a message"}
        onChange={(e) => setText(e.target.value)}
      />
      <button type="submit" className="btn btn-small btn-primary" disabled={left > 0 || !text.trim()}>
        {left > 0 ? `Wait ${left} s` : "Send"}
      </button>
      {left > 0 && (
        <span className="visually-hidden" role="status" data-testid="chat-wait">
          {timedOut ? `Timed out: ${left} s left` : `You can send again in ${left} s`}
        </span>
      )}
    </form>
  );
}
