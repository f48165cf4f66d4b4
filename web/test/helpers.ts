/** A scripted fetch: each call takes the next answer; calls are recorded for assertions. */
export interface Call {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: unknown;
}

export type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

export function scriptedFetch(answers: Array<Answer | ((call: Call) => Answer)>) {
  const calls: Call[] = [];
  const impl = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    let body: unknown = init?.body;
    if (typeof body === "string") body = JSON.parse(body);
    const call = { url: String(input), method: init?.method ?? "GET", headers, body };
    calls.push(call);
    const next = answers.shift();
    if (!next) throw new Error(`unexpected request ${call.method} ${call.url}`);
    const a = typeof next === "function" ? next(call) : next;
    const text = a.body === undefined ? "" : JSON.stringify(a.body);
    return new Response(a.status === 204 ? null : text, {
      status: a.status,
      headers: { "Content-Type": "application/json", ...(a.headers ?? {}) },
    });
  };
  return { fetch: impl as typeof fetch, calls };
}

export function memoryStorage(): Storage {
  const map = new Map<string, string>();
  return {
    get length() {
      return map.size;
    },
    clear: () => map.clear(),
    getItem: (k: string) => map.get(k) ?? null,
    key: (i: number) => [...map.keys()][i] ?? null,
    removeItem: (k: string) => void map.delete(k),
    setItem: (k: string, v: string) => void map.set(k, v),
  };
}

export const tokens = (n: number, expiresIn = 900) => ({
  access_token: `access-${n}`,
  refresh_token: `refresh-${n}`,
  token_type: "bearer",
  expires_in: expiresIn,
});
