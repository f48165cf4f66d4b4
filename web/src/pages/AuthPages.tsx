/** Sign in and sign up forms. */
import { useState } from "react";
import type { FormEvent } from "react";
import { Link, Navigate, useNavigate, useSearchParams } from "react-router";
import { useAuth } from "../auth/AuthContext";
import { ErrorBox, messageOf, useTitle } from "../components/bits";

/** Only same-site paths are followed after signing in (no open redirects). */
export function safeNext(next: string | null, fallback: string): string {
  if (next && next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\")) return next;
  return fallback;
}

export function LoginPage() {
  useTitle("Sign in");
  const auth = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"), "/");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  if (auth.status === "signed-in") return <Navigate to={next} replace />;

  async function submit(e: FormEvent): Promise<void> {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await auth.login(username.trim(), password);
      navigate(next, { replace: true });
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="page page-narrow">
      <h1>Sign in</h1>
      <form className="form card" onSubmit={(e) => void submit(e)} aria-describedby="login-error">
        <div id="login-error">
          <ErrorBox>{error}</ErrorBox>
        </div>
        <label htmlFor="login-username">Username or email</label>
        <input
          id="login-username"
          name="username"
          autoComplete="username"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <label htmlFor="login-password">Password</label>
        <input
          id="login-password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p className="muted small">
          New here? <Link to={`/register${next !== "/" ? `?next=${encodeURIComponent(next)}` : ""}`}>Create an account</Link>
        </p>
      </form>
    </div>
  );
}

export function RegisterPage() {
  useTitle("Create account");
  const auth = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"), "/dashboard");
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  if (auth.status === "signed-in") return <Navigate to={next} replace />;

  async function submit(e: FormEvent): Promise<void> {
    e.preventDefault();
    if (password !== confirm) {
      setError("The passwords do not match.");
      return;
    }
    setBusy(true);
    setError("");
    try {
      await auth.register(username.trim().toLowerCase(), email.trim(), password);
      navigate(next, { replace: true });
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="page page-narrow">
      <h1>Create an account</h1>
      <form className="form card" onSubmit={(e) => void submit(e)}>
        <ErrorBox>{error}</ErrorBox>
        <label htmlFor="reg-username">Username</label>
        <input
          id="reg-username"
          name="username"
          autoComplete="username"
          required
          minLength={3}
          maxLength={25}
          pattern="[A-Za-z0-9_]{3,25}"
          aria-describedby="reg-username-help"
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <p id="reg-username-help" className="help">
          3–25 letters, digits or underscores. It is your channel’s address.
        </p>
        <label htmlFor="reg-email">Email</label>
        <input
          id="reg-email"
          name="email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(e) => setEmail(e.target.value)}
        />
        <label htmlFor="reg-password">Password</label>
        <input
          id="reg-password"
          name="password"
          type="password"
          autoComplete="new-password"
          required
          minLength={8}
          aria-describedby="reg-password-help"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
        <p id="reg-password-help" className="help">At least 8 characters.</p>
        <label htmlFor="reg-confirm">Repeat password</label>
        <input
          id="reg-confirm"
          name="confirm"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
        />
        <button type="submit" className="btn btn-primary" disabled={busy}>
          {busy ? "Creating…" : "Create account"}
        </button>
        <p className="muted small">
          Already have an account? <Link to="/login">Sign in</Link>
        </p>
      </form>
    </div>
  );
}

/**
 * Wraps pages that need a signed-in user: visitors go to /login?next=...; someone who just
 * signed out (or deleted the account) on such a page goes home instead.
 */
export function RequireAuth({ path, children }: { path: string; children: React.ReactNode }) {
  const auth = useAuth();
  if (auth.status === "loading") return <p className="page" role="status">Loading…</p>;
  if (auth.status === "signed-out") {
    const to = auth.signedOutByUser ? "/" : `/login?next=${encodeURIComponent(path)}`;
    return <Navigate to={to} replace />;
  }
  return <>{children}</>;
}
