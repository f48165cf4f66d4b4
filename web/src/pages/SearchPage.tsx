/** `/search?q=…`: channels and categories that match; `/search?tag=…`: channels with a tag. */
import { useCallback } from "react";
import { useSearchParams } from "react-router";
import { useApi } from "../api/context";
import type { SearchResults, TagPage } from "../api/types";
import { CategoryTile, ChannelGrid, ShowMore } from "../components/ChannelCard";
import { ErrorBox, useTitle } from "../components/bits";
import { useChannelFeed } from "../lib/channelFeed";
import { useNow } from "../lib/useNow";

export function SearchPage() {
  const [params] = useSearchParams();
  const tag = params.get("tag");
  const q = params.get("q") ?? "";
  // a fresh page for each search
  return tag !== null ? <TagResults key={`tag:${tag}`} tag={tag} /> : <QueryResults key={`q:${q}`} q={q.slice(0, 200)} />;
}

function QueryResults({ q }: { q: string }) {
  useTitle(q ? `Search: ${q}` : "Search");
  const api = useApi();
  const now = useNow();
  const fetchPage = useCallback(
    async (offset: number, limit: number, signal: AbortSignal): Promise<SearchResults> =>
      q.trim()
        ? api.search(q, { offset, limit, signal })
        : { terms: [], categories: [], channels: [], next_offset: null },
    [api, q],
  );
  const feed = useChannelFeed(`q:${q}`, fetchPage);
  const categories = feed.first?.categories ?? [];
  const nothing = feed.channels !== null && feed.channels.length === 0 && categories.length === 0;
  return (
    <div className="page page-wide">
      <h1>{q.trim() ? <>Results for “{q.trim()}”</> : "Search"}</h1>
      {!q.trim() && <p className="muted">Type in the search box at the top of the page.</p>}
      <ErrorBox>{feed.error && `Could not search: ${feed.error}`}</ErrorBox>
      {feed.channels === null && !feed.error && <p role="status">Searching…</p>}
      {nothing && q.trim() && (
        <p className="muted" role="status">
          No channel or category matches “{q.trim()}”.
        </p>
      )}
      {categories.length > 0 && (
        <section aria-labelledby="result-categories">
          <h2 id="result-categories">Categories</h2>
          <ul className="category-grid category-row">
            {categories.map((c) => (
              <CategoryTile key={c.slug} category={c} />
            ))}
          </ul>
        </section>
      )}
      {feed.channels !== null && feed.channels.length > 0 && (
        <section aria-labelledby="result-channels">
          <h2 id="result-channels">Channels</h2>
          <ChannelGrid channels={feed.channels} now={now} testId="search-results" />
          <ShowMore feed={feed} />
        </section>
      )}
    </div>
  );
}

function TagResults({ tag }: { tag: string }) {
  useTitle(`Tag: ${tag}`);
  const api = useApi();
  const now = useNow();
  const fetchPage = useCallback(
    async (offset: number, limit: number, signal: AbortSignal): Promise<TagPage> =>
      api.tagChannels(tag, { offset, limit, signal }),
    [api, tag],
  );
  const feed = useChannelFeed(`tag:${tag}`, fetchPage);
  return (
    <div className="page page-wide">
      <h1>
        Channels tagged <span className="tag tag-big">{feed.first?.tag ?? tag}</span>
      </h1>
      <ErrorBox>{feed.error && `Could not load the channels: ${feed.error}`}</ErrorBox>
      {feed.channels === null && !feed.error && <p role="status">Loading…</p>}
      {feed.channels !== null && feed.channels.length === 0 && <p className="muted">No channel has this tag.</p>}
      {feed.channels !== null && feed.channels.length > 0 && (
        <ChannelGrid channels={feed.channels} now={now} testId="tag-results" />
      )}
      <ShowMore feed={feed} />
    </div>
  );
}
