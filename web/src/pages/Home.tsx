/**
 * Home: who is live now as cards (the most watched first, updated in place as titles, tags and
 * viewer counts change), the streams scheduled next, the most watched categories, then the
 * channels that are offline.
 */
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router";
import { useApi } from "../api/context";
import type { Category, ChannelList } from "../api/types";
import { CategoryTile, ChannelGrid } from "../components/ChannelCard";
import { UpcomingStreams } from "../components/UpcomingStreams";
import { ErrorBox, useTitle } from "../components/bits";
import { byViewers, useChannelFeed } from "../lib/channelFeed";
import { useNow } from "../lib/useNow";

/** Categories shown on the home page (the directory has them all). */
const HOME_CATEGORIES = 6;

export function Home() {
  useTitle("");
  const api = useApi();
  const now = useNow();
  const fetchPage = useCallback(
    async (_offset: number, _limit: number, signal: AbortSignal): Promise<ChannelList> => api.channels(signal),
    [api],
  );
  const feed = useChannelFeed("home", fetchPage, { pollMs: 15_000, unknownLive: true });
  const categories = useTopCategories();
  const live = byViewers(feed.channels?.filter((c) => c.live) ?? []);
  const offline = feed.channels?.filter((c) => !c.live) ?? [];

  return (
    <div className="page page-wide">
      <section aria-labelledby="live-heading">
        <h1 id="live-heading" className="home-heading">
          Live channels
        </h1>
        <ErrorBox>{feed.error && `Could not load channels: ${feed.error}`}</ErrorBox>
        {feed.channels === null && !feed.error && <p role="status">Loading channels…</p>}
        {feed.channels !== null &&
          (live.length === 0 ? (
            <p className="muted">Nobody is live right now.</p>
          ) : (
            <ChannelGrid channels={live} now={now} testId="live-channels" />
          ))}
      </section>
      <UpcomingStreams limit={8} />
      {categories.length > 0 && (
        <section aria-labelledby="categories-heading">
          <div className="section-head">
            <h2 id="categories-heading">Categories</h2>
            <Link to="/directory">Browse all categories</Link>
          </div>
          <ul className="category-grid category-row">
            {categories.map((c) => (
              <CategoryTile key={c.slug} category={c} />
            ))}
          </ul>
        </section>
      )}
      {offline.length > 0 && (
        <section aria-labelledby="offline-heading">
          <h2 id="offline-heading">Offline channels</h2>
          <ChannelGrid channels={offline} testId="offline-channels" />
        </section>
      )}
    </div>
  );
}

/** The most watched categories (the API lists them so), once. */
function useTopCategories(): Category[] {
  const api = useApi();
  const [list, setList] = useState<Category[]>([]);
  useEffect(() => {
    const controller = new AbortController();
    api
      .categories(controller.signal)
      .then((answer) => setList(answer.categories.slice(0, HOME_CATEGORIES)))
      .catch(() => undefined); // the row is a bonus: the channels are the page
    return () => controller.abort();
  }, [api]);
  return list;
}
