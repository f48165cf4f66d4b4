/** The app rendered at a path against a fake server, and the page's sockets as they open. */
import { act, render, waitFor } from "@testing-library/react";
import { App } from "../src/App";
import { FakeWebSocket } from "./fakeSocket";
import type { Server } from "./helpers";

export function renderAt(path: string, server: Server) {
  window.history.pushState({}, "", path);
  return render(<App client={server.client} />);
}

/** The page's newest socket on `path` (as "/ws/chat/alice"), once it exists, accepted by the
 * fake server. */
export async function acceptedSocket(path: string): Promise<FakeWebSocket> {
  let s: FakeWebSocket | undefined;
  await waitFor(() => {
    s = FakeWebSocket.last(path);
  });
  act(() => s!.accept());
  return s!;
}

/** The chat socket of the channel page, once it exists, accepted by the fake server. */
export function chatSocket(channel = "alice"): Promise<FakeWebSocket> {
  return acceptedSocket(`/ws/chat/${channel}`);
}
