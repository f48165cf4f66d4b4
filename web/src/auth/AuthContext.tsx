/** Who is signed in: the session from ApiClient plus the `me` profile, shared by every page. */
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { ApiError, type ApiClient } from "../api/client";
import { normalizeMe, type Me } from "../api/types";

export type AuthStatus = "loading" | "signed-in" | "signed-out";

export interface AuthState {
  client: ApiClient;
  status: AuthStatus;
  me: Me | null;
  /** True after the user signed out (or deleted the account) here, until they sign in again. */
  signedOutByUser: boolean;
  login(username: string, password: string): Promise<void>;
  register(username: string, email: string, password: string): Promise<void>;
  logout(): Promise<void>;
  /** Forget the session without telling the server (the account was just deleted). */
  forget(): void;
  reloadMe(): Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ client, children }: { client: ApiClient; children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [status, setStatus] = useState<AuthStatus>(client.session ? "loading" : "signed-out");
  const [signedOutByUser, setSignedOutByUser] = useState(false);

  const reloadMe = useCallback(async () => {
    if (!client.session) {
      setMe(null);
      setStatus("signed-out");
      return;
    }
    try {
      const profile = normalizeMe(await client.get<unknown>("/me"));
      setMe(profile);
      setStatus(profile ? "signed-in" : "signed-out");
    } catch (e) {
      if (e instanceof ApiError && (e.status === 401 || e.status === 404)) {
        client.forget();
        setMe(null);
        setStatus("signed-out");
      } else {
        // offline or server error: keep the session, show signed-in without a profile
        setStatus(client.session ? "signed-in" : "signed-out");
      }
    }
  }, [client]);

  useEffect(() => {
    void reloadMe();
    const unsubscribe = client.subscribe((s) => {
      if (!s) {
        setMe(null);
        setStatus("signed-out");
      }
    });
    const unwatch = typeof window !== "undefined" ? client.watchOtherTabs(window) : () => {};
    return () => {
      unsubscribe();
      unwatch();
    };
  }, [client, reloadMe]);

  const value = useMemo<AuthState>(
    () => ({
      client,
      status,
      me,
      signedOutByUser,
      async login(username, password) {
        await client.login(username, password);
        setSignedOutByUser(false);
        await reloadMe();
      },
      async register(username, email, password) {
        await client.register(username, email, password);
        setSignedOutByUser(false);
        await reloadMe();
      },
      async logout() {
        setSignedOutByUser(true);
        await client.logout();
        setMe(null);
        setStatus("signed-out");
      },
      forget() {
        setSignedOutByUser(true);
        client.forget();
      },
      reloadMe,
    }),
    [client, status, me, signedOutByUser, reloadMe],
  );

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}
