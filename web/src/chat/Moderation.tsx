/**
 * The moderation views of the chat's room settings, for the broadcaster and moderators: the
 * running bans and timeouts with an Unban button each, a form to ban or time out a user by name,
 * and the moderation log. Lists come from the REST routes and are fetched again after each
 * moderation frame; actions go on the chat socket. Names and reasons are React text, never HTML.
 */
import { useEffect, useRef, useState } from "react";
import type { FormEvent, ReactNode } from "react";
import { serverClock } from "../api/clock";
import type { ChatClientFrame } from "../api/community";
import { useApi } from "../api/context";
import type { ChatAuditEntry, ChatBans } from "../api/types";
import { isAbort } from "../lib/usePoll";
import { useNow } from "../lib/useNow";
import { banRunning, describeAudit, describeBan, formatWhen, TIMEOUTS } from "./moderation";
import { describeSeconds } from "./state";

type Command = (frame: Exclude<ChatClientFrame, { type: "say" }>) => boolean;

/** Moderation log entries per page. */
export const LOG_PAGE = 25;
/** A refresh after a moderation frame waits this long (a burst of frames: one request). */
const SETTLE_MS = 300;

/** A collapsed section whose content is made (and fetches) only while it is open. */
export function Section({ title, children }: { title: string; children: () => ReactNode }) {
  const [open, setOpen] = useState(false);
  return (
    <details className="chat-section" onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>{title}</summary>
      {open && children()}
    </details>
  );
}

function problem(e: unknown): string {
  return e instanceof Error && e.message ? e.message : "the server did not answer";
}

/**
 * Runs `load` now, and again (after a short settle) whenever `version` changes; aborts what is
 * in flight when it changes or the component goes.
 */
function useReload(load: (signal: AbortSignal) => Promise<void>, version: number, onError: (e: unknown) => void) {
  const first = useRef(true);
  const latest = useRef({ load, onError });
  useEffect(() => {
    latest.current = { load, onError }; // before the effect below (effects run in order)
  });
  useEffect(() => {
    const abort = new AbortController();
    const timer = setTimeout(
      () => {
        latest.current.load(abort.signal).catch((e: unknown) => {
          if (!isAbort(e) && !abort.signal.aborted) latest.current.onError(e);
        });
      },
      first.current ? 0 : SETTLE_MS,
    );
    first.current = false;
    return () => {
      clearTimeout(timer);
      abort.abort();
    };
  }, [version]);
}

export function BannedUsers({ channel, moderation, command }: { channel: string; moderation: number; command: Command }) {
  const api = useApi();
  const [answer, setAnswer] = useState<ChatBans | null>(null);
  const [error, setError] = useState("");
  const now = useNow(5_000);
  useReload(
    async (signal) => {
      setAnswer(await api.chatBans(channel, signal));
      setError("");
    },
    moderation,
    (e) => setError(problem(e)),
  );
  const offset = serverClock.offsetMs();
  const running = answer?.bans.filter((b) => banRunning(b, offset, now)) ?? [];

  return (
    <div className="chat-moderation">
      {error && (
        <p className="chat-notice small" role="alert">
          Could not load the banned users: {error}
        </p>
      )}
      {answer === null && !error && (
        <p className="muted small" role="status">
          Loading…
        </p>
      )}
      {answer !== null && running.length === 0 && <p className="muted small">Nobody is banned or timed out.</p>}
      {running.length > 0 && (
        <ul className="chat-bans" aria-label="Banned users" data-testid="banned-users">
          {running.map((ban) => (
            <li key={ban.user} className="chat-ban" data-testid="banned-user">
              <span className="chat-ban-who">
                <strong>{ban.display_name}</strong>
                {ban.display_name.toLowerCase() !== ban.user && <span className="muted"> ({ban.user})</span>}
              </span>
              <span className="small">
                {describeBan(ban, offset, now)}
                {ban.by ? ` by ${ban.by}` : ""}
                {ban.reason ? `: ${ban.reason}` : ""}
              </span>
              <button
                type="button"
                className="btn btn-small"
                aria-label={`Unban ${ban.user}`}
                onClick={() => command({ type: "unban", user: ban.user })}
              >
                Unban
              </button>
            </li>
          ))}
        </ul>
      )}
      {answer?.more && <p className="muted small">Only the newest {answer.bans.length} are listed.</p>}
      <BanForm command={command} />
    </div>
  );
}

/** Ban or time out a user by name (someone who has not written anything, or scrolled away). */
export function BanForm({ command }: { command: Command }) {
  const [name, setName] = useState("");
  const [action, setAction] = useState(String(TIMEOUTS[1]));
  const [reason, setReason] = useState("");
  const user = name.trim().replace(/^@/, "").toLowerCase();

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!user) return;
    const why = reason.trim();
    const sent =
      action === "ban"
        ? command({ type: "ban", user, reason: why })
        : command({ type: "timeout", user, seconds: Number(action), reason: why });
    if (sent) {
      setName("");
      setReason("");
    }
  };

  return (
    <form className="chat-ban-form" aria-label="Ban or time out a user" onSubmit={submit}>
      <label>
        User{" "}
        <input
          value={name}
          maxLength={64}
          autoComplete="off"
          spellCheck={false}
          placeholder="username"
          onChange={(e) => setName(e.target.value)}
        />
      </label>
      <label>
        Action{" "}
        <select value={action} onChange={(e) => setAction(e.target.value)}>
          {TIMEOUTS.map((s) => (
            <option key={s} value={String(s)}>
              Time out {describeSeconds(s)}
            </option>
          ))}
          <option value="ban">Ban</option>
        </select>
      </label>
      <label>
        Reason{" "}
        <input value={reason} maxLength={200} placeholder="optional" onChange={(e) => setReason(e.target.value)} />
      </label>
      <button type="submit" className="btn btn-small btn-danger" disabled={!user}>
        {action === "ban" ? "Ban user" : "Time out user"}
      </button>
    </form>
  );
}

/** Newest first, each id once. */
function mergeEntries(a: ChatAuditEntry[], b: ChatAuditEntry[]): ChatAuditEntry[] {
  const byId = new Map<number, ChatAuditEntry>();
  for (const entry of [...a, ...b]) byId.set(entry.id, entry);
  return [...byId.values()].sort((x, y) => y.id - x.id);
}

export function ModerationLog({ channel, moderation }: { channel: string; moderation: number }) {
  const api = useApi();
  const [entries, setEntries] = useState<ChatAuditEntry[] | null>(null);
  const [more, setMore] = useState(false);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState("");
  const paged = useRef(false);
  useReload(
    async (signal) => {
      const page = (await api.chatAudit(channel, undefined, LOG_PAGE, signal)).entries;
      // the newest page again after moderation: merged in above what was paged through already
      if (!paged.current) setMore(page.length === LOG_PAGE);
      paged.current = true;
      setEntries((shown) => mergeEntries(page, shown ?? []));
      setError("");
    },
    moderation,
    (e) => setError(problem(e)),
  );

  const older = async () => {
    const last = entries?.[entries.length - 1];
    if (!last) return;
    setLoading(true);
    try {
      const page = (await api.chatAudit(channel, last.id, LOG_PAGE)).entries;
      setEntries((shown) => mergeEntries(shown ?? [], page));
      setMore(page.length === LOG_PAGE);
    } catch (e) {
      setError(problem(e));
    } finally {
      setLoading(false);
    }
  };

  const offset = serverClock.offsetMs();
  return (
    <div className="chat-moderation">
      {error && (
        <p className="chat-notice small" role="alert">
          Could not load the moderation log: {error}
        </p>
      )}
      {entries === null && !error && (
        <p className="muted small" role="status">
          Loading…
        </p>
      )}
      {entries !== null && entries.length === 0 && <p className="muted small">No moderation yet.</p>}
      {entries !== null && entries.length > 0 && (
        <ol className="chat-audit" aria-label="Moderation log" data-testid="moderation-log">
          {entries.map((entry) => (
            <li key={entry.id} className="small" data-testid="audit-entry">
              <time className="muted" dateTime={new Date(entry.ts * 1000).toISOString()}>
                {formatWhen(entry.ts * 1000 - offset)}
              </time>{" "}
              {describeAudit(entry)}
              {entry.reason ? `: ${entry.reason}` : ""}
            </li>
          ))}
        </ol>
      )}
      {more && (
        <button type="button" className="btn btn-small" disabled={loading} onClick={() => void older()}>
          {loading ? "Loading…" : "Load older entries"}
        </button>
      )}
    </div>
  );
}
