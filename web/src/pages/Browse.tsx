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
