/**
 * The card of a channel in a grid (home, directory, search): a 16:9 thumbnail area with the live
 * badge and the viewer count, then avatar, title, name, category and tags. The picture is the
 * channel's `thumbnail_url` (the live still, or the last one saved when it went offline), or a
 * placeholder with the avatar when it has none.
 */
import { Link } from "react-router";
import type { Category, Channel } from "../api/types";
import { formatUptime, formatViewers } from "../lib/format";
import { Avatar, Tags } from "./bits";

export function categoryPath(slug: string): string {
  return `/directory/${encodeURIComponent(slug)}`;
}

/** The narrow picture beside the 640x360 one: `srcset` lets small cards fetch 320x180. */
export function thumbnailSrcSet(url: string): string | undefined {
  return url.includes("/640x360.jpg") ? `${url.replace("/640x360.jpg", "/320x180.jpg")} 320w, ${url} 640w` : undefined;
}

export function ChannelCard({
  channel,
  now,
}: {
  channel: Channel;
  /** Client clock in ms, for the uptime ("live for 5 min"); left out, no uptime is shown. */
  now?: number;
}) {
  const thumbnail = channel.thumbnail_url ?? null;
  const uptime = channel.live && now !== undefined ? formatUptime(channel.stream?.started_at ?? null, now) : "";
  return (
    <li className={`channel-card${channel.live ? " is-live" : ""}`} data-testid="channel-card" data-channel={channel.name}>
      <Link className="card-link" to={`/${encodeURIComponent(channel.name)}`}>
        <div className="thumb" data-testid={thumbnail ? "thumbnail" : "thumbnail-placeholder"}>
          {thumbnail ? (
            <img
              src={thumbnail}
              srcSet={thumbnailSrcSet(thumbnail)}
              sizes="(max-width: 600px) 100vw, 400px"
              alt=""
              loading="lazy"
            />
          ) : (
            <div className="thumb-placeholder" aria-hidden="true">
              <Avatar name={channel.name} url={channel.avatar_url} size={56} />
            </div>
          )}
          {channel.live ? (
            <>
              <span className="thumb-badge badge badge-live" data-testid="live-badge">
                LIVE
              </span>
              <span className="thumb-viewers" data-testid="viewer-count">
                {formatViewers(channel.viewers ?? 0)}
              </span>
            </>
          ) : (
            <span className="thumb-badge badge badge-offline">Offline</span>
          )}
        </div>
        <div className="card-head">
          <Avatar name={channel.name} url={channel.avatar_url} size={36} />
          <div className="card-who">
            <span className="card-title" title={channel.title || undefined}>
              {channel.title || <span className="muted">No title</span>}
            </span>
            <span className="card-name">{channel.display_name}</span>
            {uptime && <span className="muted small">live for {uptime}</span>}
          </div>
        </div>
      </Link>
      <div className="card-extra">
        {channel.category && channel.category_slug && (
          <Link className="card-category" to={categoryPath(channel.category_slug)}>
            {channel.category}
          </Link>
        )}
        <Tags tags={channel.tags} />
      </div>
    </li>
  );
}

/** Channels as a grid of cards; `testId` names the grid for the tests. */
export function ChannelGrid({ channels, now, testId }: { channels: Channel[]; now?: number; testId: string }) {
  return (
    <ul className="card-grid" data-testid={testId}>
      {channels.map((c) => (
        <ChannelCard key={c.name} channel={c} now={now} />
      ))}
    </ul>
  );
}

/** The "Show more" button under a paged list (nothing when no page follows). */
export function ShowMore({ feed }: { feed: { more: boolean; loadingMore: boolean; loadMore: () => void } }) {
  if (!feed.more) return null;
  return (
    <button type="button" className="btn" onClick={feed.loadMore} disabled={feed.loadingMore}>
      {feed.loadingMore ? "Loading…" : "Show more"}
    </button>
  );
}

/** A category's tile in the directory: its cover (3:4), name, and who is live in it. */
export function CategoryTile({ category }: { category: Category }) {
  return (
    <li className="category-tile" data-testid="category-tile" data-slug={category.slug}>
      <Link to={categoryPath(category.slug)} className="category-link">
        <img className="category-art" src={category.image_url} alt="" width={285} height={380} loading="lazy" />
        <span className="category-name">{category.name}</span>
        <span className="muted small">
          {category.live_channels > 0
            ? `${formatViewers(category.viewers)} · ${category.live_channels} live`
            : "Nobody live"}
        </span>
      </Link>
    </li>
  );
}
