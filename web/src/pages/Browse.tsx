/** Home: every channel, live ones first, refreshed every 15 s. */
import { useEffect, useState } from "react";
import { Link } from "react-router";
import { useApi } from "../api/context";
import type { Channel } from "../api/types";
import { useEvents } from "../chat/events";
import { Avatar, ErrorBox, LiveBadge, messageOf, Tags, useTitle } from "../components/bits";
import { formatUptime } from "../lib/format";
import { useNow } from "../lib/useNow";
import { usePoll } from "../lib/usePoll";

export function Browse() {
  useTitle("");
  const api = useApi();
  const [channels, setChannels] = useState<Channel[] | null>(null);
  const [error, setError] = useState("");

  usePoll(async (signal) => {
    try {
      const answer = await api.channels(signal);
      if (signal.aborted) return;
      setChannels(answer.channels);
      setError("");
    } catch (e) {
      if (!signal.aborted) setError(messageOf(e));
    }
  }, 15_000);

  // followed channels going live or offline: update the list at once, no reload
  const { onChannel } = useEvents();
  useEffect(
    () =>
      onChannel((event) => {
        setChannels((list) => {
          if (!list?.some((c) => c.name === event.name)) return list;
          return list.map((c) =>
            c.name === event.name
              ? { ...c, live: event.live, title: event.title, category: event.category, stream: event.live ? c.stream : undefined }
              : c,
          );
        });
        void api
          .channels()
          .then((answer) => setChannels(answer.channels))
          .catch(() => undefined);
      }),
    [api, onChannel],
  );

  const live = channels?.filter((c) => c.live) ?? [];
  const offline = channels?.filter((c) => !c.live) ?? [];
  const now = useNow();

  return (
    <div className="page">
      <h1>Browse</h1>
      <ErrorBox>{error && `Could not load channels: ${error}`}</ErrorBox>
      {channels === null && !error && <p role="status">Loading channels…</p>}
      {channels !== null && (
        <>
          <section aria-labelledby="live-heading">
            <h2 id="live-heading">Live now</h2>
            {live.length === 0 ? (
              <p className="muted">Nobody is live right now.</p>
            ) : (
              <ul className="card-grid" data-testid="live-channels">
                {live.map((c) => (
                  <ChannelCard key={c.name} channel={c} now={now} />
                ))}
              </ul>
            )}
          </section>
          {offline.length > 0 && (
            <section aria-labelledby="offline-heading">
              <h2 id="offline-heading">Offline channels</h2>
              <ul className="card-grid" data-testid="offline-channels">
                {offline.map((c) => (
                  <ChannelCard key={c.name} channel={c} now={now} />
                ))}
              </ul>
            </section>
          )}
        </>
      )}
    </div>
  );
}

function ChannelCard({ channel, now }: { channel: Channel; now: number }) {
  const uptime = channel.live ? formatUptime(channel.stream?.started_at ?? null, now) : "";
  return (
    <li className={`card channel-card${channel.live ? " is-live" : ""}`}>
      <Link className="card-link" to={`/${encodeURIComponent(channel.name)}`}>
        <CardThumbnail channel={channel} />
        <div className="card-head">
          <Avatar name={channel.name} url={channel.avatar_url} size={44} />
          <div className="card-who">
            <span className="card-name">{channel.display_name}</span>
            <LiveBadge live={channel.live} />
            {uptime && <span className="muted small"> for {uptime}</span>}
          </div>
        </div>
        <p className="card-title">{channel.title || <span className="muted">No title</span>}</p>
        {channel.category && <p className="card-category">{channel.category}</p>}
      </Link>
      <Tags tags={channel.tags} />
    </li>
  );
}

/** The channel's picture in a 16:9 box: while live one from the last seconds, offline the last
 * broadcast's last one (the URL's version changes with each, so the 15 s poll refreshes it);
 * a placeholder when it has none. The small 320x180 picture is offered for narrow cards. */
function CardThumbnail({ channel }: { channel: Channel }) {
  const url = channel.thumbnail_url;
  return (
    <div className="card-thumb" data-testid="card-thumb">
      {url ? (
        <img
          src={url}
          srcSet={`${url.replace("/640x360.jpg", "/320x180.jpg")} 320w, ${url} 640w`}
          sizes="(max-width: 600px) 100vw, 400px"
          width={640}
          height={360}
          alt=""
          loading="lazy"
          decoding="async"
        />
      ) : (
        <span className="card-thumb-empty">{channel.live ? "No preview yet" : "No preview"}</span>
      )}
    </div>
  );
}
