/** Sign in and sign up forms. */
import { useState } from "react";
import { Link, Navigate, useNavigate, useSearchParams } from "react-router";
import { useAuth } from "../auth/AuthContext";
import { ErrorBox, Loading, useTitle } from "../components/bits";
import { Field, NewPasswordFields, useAction } from "../components/forms";

const ORIGIN = "http://kitch.invalid";

/**
 * Only same-origin relative paths are followed after signing in (no open redirects); anything
 * else gives `fallback`. Browsers drop tabs and newlines anywhere in a URL and read `\` as `/`,
 * so `/<tab>/host` and `/\host` mean `//host`, another site: a path holding a control character
 * or a backslash is refused, also once percent-decoded (any number of times), as is one that
 * does not start with exactly one `/`.
 */
export function safeNext(next: string | null, fallback: string): string {
  if (!next) return fallback;
  let seen = next;
  for (;;) {
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f\\]/.test(seen)) return fallback;
    if (!seen.startsWith("/") || seen.startsWith("//")) return fallback;
    let decoded: string;
    try {
      decoded = decodeURIComponent(seen);
    } catch {
      return fallback; // a broken %-escape
    }
    if (decoded === seen) break;
    seen = decoded;
  }
  const url = new URL(next, ORIGIN);
  if (url.origin !== ORIGIN) return fallback;
  return url.pathname + url.search + url.hash;
}

/**
 * What the sign-in and sign-up forms share: where to go afterwards (`?next=`, same-site only,
 * else `fallback`), the form's busy/error state, and the submit that goes there on success.
 */
function useAuthForm(fallback: string) {
  const auth = useAuth();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const next = safeNext(params.get("next"), fallback);
  const action = useAction();
  const submit = (work: () => Promise<void>) =>
    action.submit(async () => {
      await work();
      navigate(next, { replace: true });
    });
  return { auth, next, action, submit, signedIn: auth.status === "signed-in" };
}

export function LoginPage() {
  useTitle("Sign in");
  const { auth, next, action, submit, signedIn } = useAuthForm("/");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");

  if (signedIn) return <Navigate to={next} replace />;

  return (
    <div className="page page-narrow">
      <h1>Sign in</h1>
      <form
        className="form card"
        onSubmit={submit(() => auth.login(username.trim(), password))}
        aria-describedby="login-error"
      >
        <div id="login-error">
          <ErrorBox>{action.error}</ErrorBox>
        </div>
        <Field
          id="login-username"
          label="Username or email"
          name="username"
          autoComplete="username"
          required
          value={username}
          onValue={setUsername}
        />
        <Field
          id="login-password"
          label="Password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onValue={setPassword}
        />
        <button type="submit" className="btn btn-primary" disabled={action.busy}>
          {action.busy ? "Signing in…" : "Sign in"}
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
  const { auth, next, action, submit, signedIn } = useAuthForm("/dashboard");
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");

  if (signedIn) return <Navigate to={next} replace />;

  const register = submit(async () => {
    if (password !== confirm) throw new Error("The passwords do not match.");
    await auth.register(username.trim().toLowerCase(), email.trim(), password);
  });

  return (
    <div className="page page-narrow">
      <h1>Create an account</h1>
      <form className="form card" onSubmit={register}>
        <ErrorBox>{action.error}</ErrorBox>
        <Field
          id="reg-username"
          label="Username"
          name="username"
          autoComplete="username"
          required
          minLength={3}
          maxLength={25}
          pattern="[A-Za-z0-9_]{3,25}"
          help="3–25 letters, digits or underscores. It is your channel’s address."
          value={username}
          onValue={setUsername}
        />
        <Field
          id="reg-email"
          label="Email"
          name="email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onValue={setEmail}
        />
        <NewPasswordFields
          idPrefix="reg"
          label="Password"
          password={password}
          confirm={confirm}
          onPassword={setPassword}
          onConfirm={setConfirm}
        />
        <button type="submit" className="btn btn-primary" disabled={action.busy}>
          {action.busy ? "Creating…" : "Create account"}
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
  if (auth.status === "loading") return <Loading />;
  if (auth.status === "signed-out") {
    const to = auth.signedOutByUser ? "/" : `/login?next=${encodeURIComponent(path)}`;
    return <Navigate to={to} replace />;
  }
  return <>{children}</>;
}
