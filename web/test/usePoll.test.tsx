import { act, cleanup, render } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { usePoll } from "../src/lib/usePoll";

afterEach(cleanup);

function Poller({ name, seen }: { name: string; seen: Array<{ name: string; signal: AbortSignal }> }) {
  usePoll(
    async (signal) => {
      seen.push({ name, signal });
      await new Promise(() => undefined); // never answers
    },
    10,
    name,
  );
  return null;
}

describe("usePoll", () => {
  it("aborts the call in flight when the key changes and polls the new key at once", () => {
    const seen: Array<{ name: string; signal: AbortSignal }> = [];
    const { rerender, unmount } = render(<Poller name="alice" seen={seen} />);
    expect(seen.map((s) => s.name)).toEqual(["alice"]);
    act(() => rerender(<Poller name="bob" seen={seen} />));
    expect(seen.map((s) => s.name)).toEqual(["alice", "bob"]);
    expect(seen[0]?.signal.aborted).toBe(true);
    expect(seen[1]?.signal.aborted).toBe(false);
    unmount();
    expect(seen[1]?.signal.aborted).toBe(true);
  });

  it("polls again after each answer, never two at once", async () => {
    let calls = 0;
    let inFlight = 0;
    let most = 0;
    function Counter() {
      usePoll(async () => {
        calls += 1;
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight -= 1;
      }, 1);
      return null;
    }
    render(<Counter />);
    await act(() => new Promise((r) => setTimeout(r, 60)));
    expect(calls).toBeGreaterThan(2);
    expect(most).toBe(1);
  });
});
