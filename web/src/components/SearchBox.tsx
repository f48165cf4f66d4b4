/**
 * The header's search box with type-ahead suggestions, following the ARIA combobox pattern
 * (an input with role "combobox" that owns a listbox of options; focus stays in the input and
 * `aria-activedescendant` names the highlighted option).
 *
 * Suggestions are asked for `delayMs` after the last keystroke, and an answer that arrives for
 * an older text is dropped (its request is aborted). Keys: ArrowDown/ArrowUp move through the
 * suggestions (ArrowDown opens them), Enter opens the highlighted one or else the results page,
 * Escape closes the list and, pressed again, clears the box; Tab leaves and closes.
 */
import { useEffect, useId, useMemo, useState } from "react";
import type { KeyboardEvent } from "react";
import { useNavigate } from "react-router";
import { useApi } from "../api/context";
import type { SearchResults } from "../api/types";
import { formatViewers } from "../lib/format";
import { Avatar } from "./bits";
import { categoryPath } from "./ChannelCard";

/** Suggestions shown: categories, then channels. */
const MAX_CATEGORIES = 3;
const MAX_CHANNELS = 5;

export interface Suggestion {
  kind: "category" | "channel" | "search";
  key: string;
  label: string;
  detail: string;
  to: string;
  avatar?: { name: string; url: string | null };
  live?: boolean;
}

export function searchPath(q: string): string {
  return `/search?q=${encodeURIComponent(q)}`;
}

/** The options of the list for the text `q` and the answer to it. */
export function suggestionsFor(q: string, answer: SearchResults | null): Suggestion[] {
  const options: Suggestion[] = [];
  for (const c of answer?.categories.slice(0, MAX_CATEGORIES) ?? []) {
    const detail = c.live_channels > 0 ? `Category · ${formatViewers(c.viewers)}` : "Category";
    options.push({ kind: "category", key: `category:${c.slug}`, label: c.name, detail, to: categoryPath(c.slug) });
  }
  for (const c of answer?.channels.slice(0, MAX_CHANNELS) ?? []) {
    options.push({
      kind: "channel",
      key: `channel:${c.name}`,
      label: c.display_name,
      detail: c.live ? `Live · ${c.title || c.category || formatViewers(c.viewers ?? 0)}` : "Offline",
      to: `/${encodeURIComponent(c.name)}`,
      avatar: { name: c.name, url: c.avatar_url },
      live: c.live,
    });
  }
  if (q) options.push({ kind: "search", key: "search", label: `Search for “${q}”`, detail: "", to: searchPath(q) });
  return options;
}

export function SearchBox({ delayMs = 200, initial = "" }: { delayMs?: number; initial?: string }) {
  const api = useApi();
  const navigate = useNavigate();
  const id = useId();
  const listId = `${id}-list`;
  const [text, setText] = useState(initial);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  // the answer and the text it answers: shown only while the box still holds that text
  const [answer, setAnswer] = useState<{ q: string; results: SearchResults } | null>(null);
  const q = text.trim();

  useEffect(() => {
    if (!q) return;
    const controller = new AbortController();
    const timer = setTimeout(() => {
      api
        .search(q, { limit: MAX_CHANNELS, signal: controller.signal })
        .then((results) => {
          if (!controller.signal.aborted) setAnswer({ q, results });
        })
        .catch(() => undefined); // aborted, or offline: the results page still works
    }, delayMs);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [api, q, delayMs]);

  const results = answer && answer.q === q ? answer.results : null;
  const options = useMemo(() => (q ? suggestionsFor(q, results) : []), [q, results]);
  const expanded = open && options.length > 0;
  const found = options.filter((o) => o.kind !== "search").length;
  const highlighted = expanded && active >= 0 && active < options.length ? active : -1;
  const optionId = (i: number) => `${id}-option-${i}`;

  const go = (option: Suggestion) => {
    setOpen(false);
    setActive(-1);
    if (option.kind !== "search") setText("");
    void navigate(option.to);
  };

  const submit = () => {
    if (!q) return;
    setOpen(false);
    setActive(-1);
    void navigate(searchPath(q));
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!expanded) {
        setOpen(true);
        setActive(e.key === "ArrowDown" ? 0 : options.length - 1);
        return;
      }
      const step = e.key === "ArrowDown" ? 1 : -1;
      setActive((highlighted + step + options.length + (highlighted < 0 && step < 0 ? 1 : 0)) % options.length);
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (highlighted >= 0) go(options[highlighted]!);
      else submit();
    } else if (e.key === "Escape") {
      if (expanded) {
        e.preventDefault();
        setOpen(false);
        setActive(-1);
      } else if (text) {
        e.preventDefault();
        setText("");
      }
    } else if (e.key === "Tab") {
      setOpen(false);
    }
  };

  return (
    <form
      role="search"
      className="search-box"
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <label htmlFor={`${id}-input`} className="visually-hidden">
        Search channels and categories
      </label>
      <input
        id={`${id}-input`}
        type="search"
        role="combobox"
        placeholder="Search"
        autoComplete="off"
        spellCheck={false}
        maxLength={200}
        aria-autocomplete="list"
        aria-expanded={expanded}
        aria-controls={listId}
        aria-activedescendant={highlighted >= 0 ? optionId(highlighted) : undefined}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setOpen(true);
          setActive(-1);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => setOpen(false)}
        onKeyDown={onKeyDown}
      />
      <ul id={listId} role="listbox" aria-label="Suggestions" className="search-suggestions" hidden={!expanded}>
        {expanded &&
          options.map((option, i) => (
            <li
              key={option.key}
              id={optionId(i)}
              role="option"
              aria-selected={i === highlighted}
              className={`suggestion suggestion-${option.kind}${i === highlighted ? " is-active" : ""}`}
              // keep the focus in the input (the pattern): choose on mouse down, before blur
              onMouseDown={(e) => {
                e.preventDefault();
                go(option);
              }}
              onMouseMove={() => setActive(i)}
            >
              {option.avatar && <Avatar name={option.avatar.name} url={option.avatar.url} size={24} />}
              <span className="suggestion-label">{option.label}</span>
              {option.live && <span className="badge badge-live">LIVE</span>}
              {option.detail && <span className="suggestion-detail muted small">{option.detail}</span>}
            </li>
          ))}
      </ul>
      <div className="visually-hidden" role="status" aria-live="polite">
        {open && results ? `${found} suggestion${found === 1 ? "" : "s"}` : ""}
      </div>
    </form>
  );
}
