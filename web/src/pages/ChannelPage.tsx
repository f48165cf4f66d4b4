/** Watch page: player (or the offline state), title, category, tags; live status every 5 s. */
import { lazy, Suspense, useState } from "react";
import { useParams } from "react-router";
import { ApiError } from "../api/client";
import { useApi } from "../api/context";
import type { Channel } from "../api/types";
import { Avatar, ErrorBox, LiveBadge, messageOf, Tags, useTitle } from "../components/bits";
import { formatUptime } from "../lib/format";
import { useNow } from "../lib/useNow";
import { usePoll } from "../lib/usePoll";
import { NotFound } from "./NotFound";

// hls.js is large: load it only on the watch page.
const Player = lazy(() => import("../player/Player").then((m) => ({ default: m.Player })));

export function hlsUrl(channel: string): string {
  return `/hls/${encodeURIComponent(channel)}/master.m3u8`;
}

/** `/{channel}`: a fresh page (no state carried over) for each channel. */
export function ChannelRoute() {
  const { channel: name = "" } = useParams();
  return <ChannelPage key={name} name={name} />;
}

export function ChannelPage({ name }: { name: string }) {
  const api = useApi();
  const now = useNow();
  const [channel, setChannel] = useState<Channel | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState("");
  useTitle(channel?.display_name ?? name);

  usePoll(
    async (signal) => {
      try {
        const c = await api.channel(name, signal);
        if (signal.aborted) return; // answered after we left this channel
        setChannel(c);
        setMissing(false);
        setError("");
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) setMissing(true);
        else setError(messageOf(e));
      }
    },
    5000,
    name,
  );

  if (missing) return <NotFound what={`There is no channel called “${name}”.`} />;
  if (!channel) {
    return (
      <div className="page">
        <ErrorBox>{error}</ErrorBox>
        {!error && <p role="status">Loading…</p>}
      </div>
    );
  }
  // A new broadcast (a new id) remounts the player, reloading the source.
  const broadcastKey = String(channel.stream?.id ?? "live");
  return (
    <div className="page page-wide channel-page">
      <div className="player-slot">
        {channel.live ? (
          <Suspense fallback={<div className="player-offline" role="status">Loading player…</div>}>
            <Player key={broadcastKey} src={hlsUrl(channel.name)} title={channel.display_name} />
          </Suspense>
        ) : (
          <div className="player-offline" data-testid="channel-offline">
            <Avatar name={channel.name} url={channel.avatar_url} size={72} />
            <p>
              <strong>{channel.display_name}</strong> is offline.
            </p>
            <p className="muted small">This page starts playing by itself when they go live.</p>
          </div>
        )}
      </div>
      <ErrorBox>{error && `Could not refresh the channel: ${error}`}</ErrorBox>
      <section className="channel-info">
        <div className="channel-head">
          <Avatar name={channel.name} url={channel.avatar_url} size={56} />
          <div>
            <h1 className="channel-name">
              {channel.display_name} <LiveBadge live={channel.live} />
            </h1>
            <p className="channel-title" data-testid="channel-title">
              {channel.title || <span className="muted">No title</span>}
            </p>
            <p className="muted small">
              {[
                channel.category && (
                  <span key="category" className="category">
                    {channel.category}
                  </span>
                ),
                channel.live && channel.stream?.started_at && (
                  <span key="uptime">
                    live for {formatUptime(channel.stream.started_at, now)}
                  </span>
                ),
              ]
                .filter(Boolean)
                .flatMap((part, i) => (i === 0 ? [part] : [" · ", part]))}
            </p>
          </div>
        </div>
        <Tags tags={channel.tags} />
        {channel.description && <p className="channel-description">{channel.description}</p>}
      </section>
    </div>
  );
}
