/** Profile settings: display name and bio, avatar, password, account deletion. */
import { useState } from "react";
import type { FormEvent } from "react";
import { api } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Avatar, ErrorBox, messageOf, Notice, useTitle } from "../components/bits";

/** Avatar uploads accepted by the server (default 2 MiB at most). */
export const AVATAR_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
export const AVATAR_MAX_BYTES = 2 * 1024 * 1024;

export function avatarProblem(file: { type: string; size: number }): string | null {
  if (!AVATAR_TYPES.includes(file.type)) return "Choose a PNG, JPEG, WebP or GIF image.";
  if (file.size > AVATAR_MAX_BYTES) return "The image is larger than 2 MB.";
  return null;
}

export function SettingsPage() {
  useTitle("Settings");
  const { me } = useAuth();
  if (!me) return <p className="page" role="status">Loading…</p>;
  return (
    <div className="page page-narrow settings">
      <h1>Settings</h1>
      <ProfileForm />
      <AvatarForm />
      <PasswordForm />
      <DeleteAccount />
    </div>
  );
}

function ProfileForm() {
  const { me, reloadMe } = useAuth();
  const [displayName, setDisplayName] = useState(me?.display_name ?? "");
  const [bio, setBio] = useState(me?.bio ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");

  async function save(e: FormEvent): Promise<void> {
    e.preventDefault();
    setBusy(true);
    setError("");
    setMessage("");
    try {
      await api.patch<unknown>("/me", { display_name: displayName.trim(), bio });
      await reloadMe();
      setMessage("Profile saved.");
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="profile-heading">
      <h2 id="profile-heading">Profile</h2>
      <form className="form" onSubmit={(e) => void save(e)}>
        <label htmlFor="set-display-name">Display name</label>
        <input
          id="set-display-name"
          maxLength={50}
          value={displayName}
          onChange={(e) => setDisplayName(e.target.value)}
        />
        <label htmlFor="set-bio">Bio</label>
        <textarea id="set-bio" rows={4} maxLength={1000} value={bio} onChange={(e) => setBio(e.target.value)} />
        <button type="submit" className="btn btn-primary" disabled={busy}>
          Save profile
        </button>
        <Notice>{message}</Notice>
        <ErrorBox>{error}</ErrorBox>
      </form>
    </section>
  );
}

function AvatarForm() {
  const { me, reloadMe } = useAuth();
  const [version, setVersion] = useState(0);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");

  async function upload(file: File | undefined): Promise<void> {
    if (!file) return;
    setError("");
    setMessage("");
    const problem = avatarProblem(file);
    if (problem) {
      setError(problem);
      return;
    }
    setBusy(true);
    try {
      await api.put<unknown>("/me/avatar", file);
      setVersion(Date.now());
      await reloadMe();
      setMessage("Avatar updated.");
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="avatar-heading">
      <h2 id="avatar-heading">Avatar</h2>
      <div className="field-row">
        {me && <Avatar name={me.username} url={me.avatar_url} size={64} version={version} />}
        <div>
          <label htmlFor="set-avatar">Upload an image</label>
          <input
            id="set-avatar"
            type="file"
            accept={AVATAR_TYPES.join(",")}
            disabled={busy}
            aria-describedby="set-avatar-help"
            onChange={(e) => void upload(e.target.files?.[0])}
          />
          <p id="set-avatar-help" className="help">PNG, JPEG, WebP or GIF, up to 2 MB.</p>
        </div>
      </div>
      <Notice>{message}</Notice>
      <ErrorBox>{error}</ErrorBox>
    </section>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");

  async function save(e: FormEvent): Promise<void> {
    e.preventDefault();
    setError("");
    setMessage("");
    if (next !== confirm) {
      setError("The new passwords do not match.");
      return;
    }
    setBusy(true);
    try {
      const body = await api.post<unknown>("/me/password", {
        current_password: current,
        new_password: next,
      });
      // A password change signs out every session; adopt new tokens if the server sent them.
      if (body && typeof body === "object" && "access_token" in body) {
        api.acceptTokens(body as { access_token: string; refresh_token: string });
      }
      setCurrent("");
      setNext("");
      setConfirm("");
      setMessage("Password changed. Other devices have been signed out.");
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card" aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <form className="form" onSubmit={(e) => void save(e)}>
        <label htmlFor="set-current">Current password</label>
        <input
          id="set-current"
          type="password"
          autoComplete="current-password"
          required
          value={current}
          onChange={(e) => setCurrent(e.target.value)}
        />
        <label htmlFor="set-new">New password</label>
        <input
          id="set-new"
          type="password"
          autoComplete="new-password"
          required
          minLength={8}
          value={next}
          onChange={(e) => setNext(e.target.value)}
        />
        <label htmlFor="set-confirm">Repeat new password</label>
        <input
          id="set-confirm"
          type="password"
          autoComplete="new-password"
          required
          value={confirm}
          onChange={(e) => setConfirm(e.target.value)}
        />
        <button type="submit" className="btn btn-primary" disabled={busy}>
          Change password
        </button>
        <Notice>{message}</Notice>
        <ErrorBox>{error}</ErrorBox>
      </form>
    </section>
  );
}

function DeleteAccount() {
  const { forget } = useAuth();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");

  async function remove(e: FormEvent): Promise<void> {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      await api.delete<unknown>("/me", { password });
      forget(); // the page guard then sends us home
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="card card-danger" aria-labelledby="delete-heading">
      <h2 id="delete-heading">Delete account</h2>
      <p>This removes your account, channel and stream key for good.</p>
      {open ? (
        <form className="form" onSubmit={(e) => void remove(e)}>
          <label htmlFor="del-password">Confirm with your password</label>
          <input
            id="del-password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
          <div className="actions">
            <button type="submit" className="btn btn-danger" disabled={busy}>
              Delete my account
            </button>
            <button type="button" className="btn" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
          <ErrorBox>{error}</ErrorBox>
        </form>
      ) : (
        <button type="button" className="btn btn-danger" onClick={() => setOpen(true)}>
          Delete account…
        </button>
      )}
    </section>
  );
}
