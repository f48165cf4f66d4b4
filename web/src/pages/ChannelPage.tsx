/** Watch page: player (or the offline state), title, category, tags, upcoming scheduled
 * streams; live status every 5 s. */
import { lazy, Suspense, useEffect, useState } from "react";
import { Link, useParams } from "react-router";
import { ApiError } from "../api/client";
import { useApi } from "../api/context";
import type { ChannelCommunity } from "../api/community";
import type { Channel } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ChatPanel } from "../chat/ChatPanel";
import { useEvents } from "../chat/events";
import { useChat } from "../chat/useChat";
import { Avatar, ErrorBox, LiveBadge, messageOf, Tags, useTitle } from "../components/bits";
import { categoryPath } from "../components/ChannelCard";
import { ChannelSchedule } from "../components/ChannelSchedule";
import { formatUptime } from "../lib/format";
import { useNow } from "../lib/useNow";
import { usePoll } from "../lib/usePoll";
import { PastBroadcasts } from "../recordings/PastBroadcasts";
import { NotFound } from "./NotFound";

// hls.js is large: load it only on the watch page.
const Player = lazy(() => import("../player/Player").then((m) => ({ default: m.Player })));

/** `/{channel}`: a fresh page (no state carried over) for each channel. */
export function ChannelRoute() {
  const { channel: name = "" } = useParams();
  return <ChannelPage key={name} name={name} />;
}

export function ChannelPage({ name }: { name: string }) {
  const api = useApi();
  const now = useNow();
  const [channel, setChannel] = useState<(Channel & ChannelCommunity) | null>(null);
  const [known, setKnown] = useState(false);
  // the room opens once the channel is known to exist
  const chat = useChat(known ? name : null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState("");
  useTitle(channel?.display_name ?? name);

  // a followed channel going live or offline (the events socket): ask again at once
  const [asked, setAsked] = useState(0);
  const { onChannel } = useEvents();
  useEffect(
    () =>
      onChannel((event) => {
        if (event.name === name) setAsked((n) => n + 1);
      }),
    [name, onChannel],
  );

  usePoll(
    async (signal) => {
      try {
        const c = await api.channel(name, signal);
        if (signal.aborted) return; // answered after we left this channel
        setChannel(c);
        setKnown(true);
        setMissing(false);
        setError("");
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof ApiError && e.status === 404) setMissing(true);
        else setError(messageOf(e));
      }
    },
    5000,
    `${name}\n${asked}`,
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
      <div className="channel-main">
      <div className="player-slot">
        {channel.live ? (
          <Suspense fallback={<div className="player-offline" role="status">Loading player…</div>}>
            <Player key={broadcastKey} src={channel.hls_url} title={channel.display_name} />
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
            <ViewerCount live={channel.live} viewers={chat.state.viewers ?? channel.viewers ?? null} />
            <p className="muted small">
              {[
                channel.category &&
                  (channel.category_slug ? (
                    <Link key="category" className="category" to={categoryPath(channel.category_slug)}>
                      {channel.category}
                    </Link>
                  ) : (
                    <span key="category" className="category">
                      {channel.category}
                    </span>
                  )),
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
        <FollowButton channel={channel} />
        <Tags tags={channel.tags} />
        {channel.description && <p className="channel-description">{channel.description}</p>}
      </section>
      <PastBroadcasts name={channel.name} />
      <ChannelSchedule name={channel.name} />
      </div>
      <ChatPanel channel={channel.name} chat={chat} />
    </div>
  );
}

/** Viewers right now: from the live chat's presence frames, else the channel JSON. */
function ViewerCount({ live, viewers }: { live: boolean; viewers: number | null }) {
  if (!live || viewers === null) return null;
  return (
    <p className="viewer-count small" data-testid="viewer-count">
      {viewers === 1 ? "1 viewer" : `${viewers.toLocaleString()} viewers`}
    </p>
  );
}

/** Follow or unfollow (signed in, not one's own channel); signed out it asks to sign in. */
function FollowButton({ channel }: { channel: Channel & ChannelCommunity }) {
  const api = useApi();
  const auth = useAuth();
  const [state, setState] = useState<{ following: boolean; count: number | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  if (auth.me?.username === channel.name) return null;
  const following = state?.following ?? channel.following ?? false;
  const count = state ? state.count : (channel.follower_count ?? null);
  if (auth.status !== "signed-in") {
    return (
      <p className="follow small">
        <Link className="btn btn-small" to={`/login?next=${encodeURIComponent(`/${channel.name}`)}`}>
          Follow
        </Link>
        {count !== null && <span className="muted"> {count} followers</span>}
      </p>
    );
  }
  const toggle = async () => {
    setBusy(true);
    setError("");
    try {
      const answer = await api.follow(channel.name, !following);
      setState({ following: answer.following, count: answer.follower_count });
    } catch (e) {
      setError(messageOf(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="follow small">
      <button
        type="button"
        className={`btn btn-small${following ? "" : " btn-primary"}`}
        aria-pressed={following}
        disabled={busy}
        onClick={() => void toggle()}
      >
        {following ? "Following" : "Follow"}
      </button>
      {count !== null && (
        <span className="muted" data-testid="follower-count">
          {" "}
          {count === 1 ? "1 follower" : `${count} followers`}
        </span>
      )}
      <ErrorBox>{error && `Could not change the follow: ${error}`}</ErrorBox>
    </div>
  );
}
