/** Small shared pieces: avatar, live badge, tags, error box, page title. */
import { useEffect, useState } from "react";
import type { ReactNode } from "react";
import { Link } from "react-router";

export function avatarUrl(name: string): string {
  return `/api/v1/users/${encodeURIComponent(name)}/avatar`;
}

/**
 * The user's avatar, or their initial on a coloured disc when there is none. `url` is the API's
 * `avatar_url`: null means "no avatar" (no request made), undefined means "unknown" (try the
 * default avatar URL and fall back on error).
 */
export function Avatar({
  name,
  url,
  size = 40,
  version = 0,
}: {
  name: string;
  url?: string | null;
  size?: number;
  version?: number;
}) {
  // the image that failed to load; another one (new name, url or version) is tried afresh
  const source = `${name}\n${url}\n${version}`;
  const [failedSource, setFailedSource] = useState<string | null>(null);
  const failed = failedSource === source;
  const initial = name.slice(0, 1).toUpperCase();
  if (failed || (url === null && !version)) {
    return (
      <span className="avatar avatar-fallback" style={{ width: size, height: size }} aria-hidden="true">
        {initial}
      </span>
    );
  }
  return (
    <img
      className="avatar"
      src={version ? `${url ?? avatarUrl(name)}?v=${version}` : (url ?? avatarUrl(name))}
      alt=""
      width={size}
      height={size}
      onError={() => setFailedSource(source)}
    />
  );
}

export function LiveBadge({ live }: { live: boolean }) {
  return live ? (
    <span className="badge badge-live" data-testid="live-badge">LIVE</span>
  ) : (
    <span className="badge badge-offline" data-testid="offline-badge">Offline</span>
  );
}

/** The page of the channels that carry a tag. */
export function tagPath(tag: string): string {
  return `/search?tag=${encodeURIComponent(tag)}`;
}

/** A channel's tags, each a link to the channels that carry it. */
export function Tags({ tags }: { tags: string[] }) {
  if (tags.length === 0) return null;
  return (
    <ul className="tags" aria-label="Tags">
      {tags.map((t) => (
        <li key={t} className="tag">
          <Link to={tagPath(t)}>{t}</Link>
        </li>
      ))}
    </ul>
  );
}

export function ErrorBox({ children }: { children: ReactNode }) {
  if (!children) return null;
  return (
    <div className="error-box" role="alert">
      {children}
    </div>
  );
}

export function Notice({ children }: { children: ReactNode }) {
  if (!children) return null;
  return (
    <div className="notice" role="status">
      {children}
    </div>
  );
}

/** The placeholder of a page whose data is on its way. */
export function Loading({ className = "page" }: { className?: string }) {
  return (
    <p className={className} role="status">
      Loading…
    </p>
  );
}

/** Sets document.title while mounted. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Kitch` : "Kitch";
  }, [title]);
}

export function messageOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return "Something went wrong.";
}
