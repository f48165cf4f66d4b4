/** Who is signed in: the API client's session (with the user's profile), shared by every page. */
import { createContext, useContext, useEffect, useMemo, useState, useSyncExternalStore } from "react";
import type { ReactNode } from "react";
import { useApi } from "../api/context";
import type { PrivateUser } from "../api/types";

export type AuthStatus = "loading" | "signed-in" | "signed-out";

export interface AuthState {
  status: AuthStatus;
  me: PrivateUser | null;
  /** True after the user signed out (or deleted the account) here, until they sign in again. */
  signedOutByUser: boolean;
  login(username: string, password: string): Promise<void>;
  register(username: string, email: string, password: string): Promise<void>;
  logout(): Promise<void>;
  /** Forget the session without telling the server (the account was just deleted). */
  forget(): void;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const client = useApi();
  const { session, restored } = useSyncExternalStore(client.subscribe, client.snapshot);
  const [signedOutByUser, setSignedOutByUser] = useState(false);

  useEffect(() => {
    void client.restore();
    return client.watchOtherTabs();
  }, [client]);

  const status: AuthStatus = session ? "signed-in" : restored ? "signed-out" : "loading";
  const me = session?.user ?? null;
  const value = useMemo<AuthState>(
    () => ({
      status,
      me,
      signedOutByUser,
      async login(username, password) {
        await client.login(username, password);
        setSignedOutByUser(false);
      },
      async register(username, email, password) {
        await client.register(username, email, password);
        setSignedOutByUser(false);
      },
      async logout() {
        setSignedOutByUser(true);
        await client.logout();
      },
      forget() {
        setSignedOutByUser(true);
        client.forget();
      },
    }),
    [client, status, me, signedOutByUser],
  );

  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const ctx = useContext(AuthContext);
  if (!ctx) throw new Error("useAuth outside AuthProvider");
  return ctx;
}
