/** Profile settings: display name and bio, avatar, password, account deletion. */
import { useRef, useState } from "react";
import { api } from "../api/client";
import { useAuth } from "../auth/AuthContext";
import { Avatar, ErrorBox, Loading, useTitle } from "../components/bits";
import {
  ActionStatus,
  Field,
  NewPasswordFields,
  TextAreaField,
  useAction,
  useFocusOnToggle,
} from "../components/forms";

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
  if (!me) return <Loading />;
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
  const action = useAction();

  const save = action.submit(async () => {
    await api.patch<unknown>("/me", { display_name: displayName.trim(), bio });
    await reloadMe();
    return "Profile saved.";
  });

  return (
    <section className="card" aria-labelledby="profile-heading">
      <h2 id="profile-heading">Profile</h2>
      <form className="form" onSubmit={save}>
        <Field id="set-display-name" label="Display name" maxLength={50} value={displayName} onValue={setDisplayName} />
        <TextAreaField id="set-bio" label="Bio" rows={4} maxLength={1000} value={bio} onValue={setBio} />
        <button type="submit" className="btn btn-primary" disabled={action.busy}>
          Save profile
        </button>
        <ActionStatus action={action} />
      </form>
    </section>
  );
}

function AvatarForm() {
  const { me, reloadMe } = useAuth();
  const [version, setVersion] = useState(0);
  const action = useAction();

  async function upload(file: File | undefined): Promise<void> {
    if (!file) return;
    const problem = avatarProblem(file);
    if (problem) {
      action.fail(problem);
      return;
    }
    await action.run(async () => {
      await api.put<unknown>("/me/avatar", file);
      setVersion(Date.now());
      await reloadMe();
      return "Avatar updated.";
    });
  }

  return (
    <section className="card" aria-labelledby="avatar-heading">
      <h2 id="avatar-heading">Avatar</h2>
      <div className="field-row">
        {me && <Avatar name={me.username} url={me.avatar_url} size={64} version={version} />}
        <div>
          <Field
            id="set-avatar"
            label="Upload an image"
            type="file"
            accept={AVATAR_TYPES.join(",")}
            disabled={action.busy}
            help="PNG, JPEG, WebP or GIF, up to 2 MB."
            onChange={(e) => void upload(e.target.files?.[0])}
          />
        </div>
      </div>
      <ActionStatus action={action} />
    </section>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const action = useAction();

  const save = action.submit(async () => {
    if (next !== confirm) throw new Error("The new passwords do not match.");
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
    return "Password changed. Other devices have been signed out.";
  });

  return (
    <section className="card" aria-labelledby="password-heading">
      <h2 id="password-heading">Password</h2>
      <form className="form" onSubmit={save}>
        <Field
          id="set-current"
          label="Current password"
          type="password"
          autoComplete="current-password"
          required
          value={current}
          onValue={setCurrent}
        />
        <NewPasswordFields
          idPrefix="set-new"
          label="New password"
          password={next}
          confirm={confirm}
          onPassword={setNext}
          onConfirm={setConfirm}
        />
        <button type="submit" className="btn btn-primary" disabled={action.busy}>
          Change password
        </button>
        <ActionStatus action={action} />
      </form>
    </section>
  );
}

function DeleteAccount() {
  const { forget } = useAuth();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const action = useAction();
  const opener = useRef<HTMLButtonElement>(null);
  const field = useRef<HTMLInputElement>(null);
  useFocusOnToggle(open, field, opener);

  const remove = action.submit(async () => {
    await api.delete<unknown>("/me", { password });
    forget(); // the page guard then sends us home
  });

  return (
    <section className="card card-danger" aria-labelledby="delete-heading">
      <h2 id="delete-heading">Delete account</h2>
      <p>This removes your account, channel and stream key for good.</p>
      {open ? (
        <form className="form" onSubmit={remove}>
          <Field
            ref={field}
            id="del-password"
            label="Confirm with your password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onValue={setPassword}
          />
          <div className="actions">
            <button type="submit" className="btn btn-danger" disabled={action.busy}>
              Delete my account
            </button>
            <button type="button" className="btn" onClick={() => setOpen(false)}>
              Cancel
            </button>
          </div>
          <ErrorBox>{action.error}</ErrorBox>
        </form>
      ) : (
        <button ref={opener} type="button" className="btn btn-danger" onClick={() => setOpen(true)}>
          Delete account…
        </button>
      )}
    </section>
  );
}
