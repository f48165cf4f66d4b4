/** `/directory`: every category as a tile, the most watched first; `/directory/{slug}`: one
 * category and its live channels. */
import { useCallback, useState } from "react";
import { Link, useParams } from "react-router";
import { ApiError } from "../api/client";
import { useApi } from "../api/context";
import type { Category, CategoryPage as CategoryAnswer } from "../api/types";
import { CategoryTile, ChannelGrid, ShowMore } from "../components/ChannelCard";
import { ErrorBox, messageOf, useTitle } from "../components/bits";
import { byViewers, useChannelFeed } from "../lib/channelFeed";
import { formatViewers } from "../lib/format";
import { useNow } from "../lib/useNow";
import { usePoll } from "../lib/usePoll";
import { NotFound } from "./NotFound";

export function Directory() {
  useTitle("Browse categories");
  const api = useApi();
  const [categories, setCategories] = useState<Category[] | null>(null);
  const [error, setError] = useState("");
  usePoll(async (signal) => {
    try {
      const answer = await api.categories(signal);
      if (signal.aborted) return;
      setCategories(answer.categories);
      setError("");
    } catch (e) {
      if (!signal.aborted) setError(messageOf(e));
    }
  }, 30_000);
  return (
    <div className="page page-wide">
      <h1>Browse categories</h1>
      <ErrorBox>{error && `Could not load the categories: ${error}`}</ErrorBox>
      {categories === null && !error && <p role="status">Loading categories…</p>}
      {categories !== null && categories.length === 0 && <p className="muted">There are no categories yet.</p>}
      {categories !== null && categories.length > 0 && (
        <ul className="category-grid" data-testid="categories">
          {categories.map((c) => (
            <CategoryTile key={c.slug} category={c} />
          ))}
        </ul>
      )}
    </div>
  );
}

/** `/directory/{slug}`: a fresh page (no state carried over) for each category. */
export function CategoryRoute() {
  const { slug = "" } = useParams();
  return <CategoryPage key={slug} slug={slug} />;
}

export function CategoryPage({ slug }: { slug: string }) {
  const api = useApi();
  const now = useNow();
  const [missing, setMissing] = useState(false);
  const fetchPage = useCallback(
    async (offset: number, limit: number, signal: AbortSignal): Promise<CategoryAnswer> => {
      try {
        return await api.category(slug, { live: true, offset, limit, signal });
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) setMissing(true);
        throw e;
      }
    },
    [api, slug],
  );
  const feed = useChannelFeed(slug, fetchPage);
  const category = feed.first?.category ?? null;
  useTitle(category?.name ?? "Category");

  if (missing) return <NotFound what="There is no such category." />;
  return (
    <div className="page page-wide">
      <p className="breadcrumbs small">
        <Link to="/directory">Categories</Link>
      </p>
      {category && (
        <header className="category-head">
          <img className="category-art" src={category.image_url} alt="" width={114} height={152} />
          <div>
            <h1>{category.name}</h1>
            <p className="muted" data-testid="category-stats">
              {category.live_channels === 1 ? "1 live channel" : `${category.live_channels} live channels`} ·{" "}
              {formatViewers(category.viewers)}
            </p>
          </div>
        </header>
      )}
      <ErrorBox>{feed.error && `Could not load the channels: ${feed.error}`}</ErrorBox>
      {feed.channels === null && !feed.error && <p role="status">Loading…</p>}
      {feed.channels !== null && category && (
        <section aria-labelledby="category-live-heading">
          <h2 id="category-live-heading">Live channels</h2>
          {feed.channels.filter((c) => c.live).length === 0 ? (
            <p className="muted">Nobody is streaming {category.name} right now.</p>
          ) : (
            <ChannelGrid
              channels={byViewers(feed.channels.filter((c) => c.live))}
              now={now}
              testId="category-channels"
            />
          )}
          <ShowMore feed={feed} />
        </section>
      )}
    </div>
  );
}
