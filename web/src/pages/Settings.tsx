/** Profile settings: display name and bio, email, avatar, password, account deletion. */
import { useRef, useState } from "react";
import { useApi } from "../api/context";
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
      <EmailForm />
      <AvatarForm />
      <PasswordForm />
      <DeleteAccount />
    </div>
  );
}

function ProfileForm() {
  const { me } = useAuth();
  const api = useApi();
  const [displayName, setDisplayName] = useState(me?.display_name ?? "");
  const [bio, setBio] = useState(me?.bio ?? "");
  const action = useAction();

  const save = action.submit(async () => {
    await api.patchMe({ display_name: displayName.trim(), bio });
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

/** A new email address takes the current password too (the server refuses it without). */
function EmailForm() {
  const { me } = useAuth();
  const api = useApi();
  const [email, setEmail] = useState(me?.email ?? "");
  const [password, setPassword] = useState("");
  const action = useAction();

  const save = action.submit(async () => {
    await api.patchMe({ email: email.trim(), current_password: password });
    setPassword("");
    return "Email changed.";
  });

  return (
    <section className="card" aria-labelledby="email-heading">
      <h2 id="email-heading">Email</h2>
      <form className="form" onSubmit={save}>
        <Field
          id="set-email"
          label="Email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onValue={setEmail}
        />
        <Field
          id="set-email-password"
          label="Your password"
          type="password"
          autoComplete="current-password"
          required
          help="Needed to change the address your account is tied to."
          value={password}
          onValue={setPassword}
        />
        <button type="submit" className="btn btn-primary" disabled={action.busy}>
          Change email
        </button>
        <ActionStatus action={action} />
      </form>
    </section>
  );
}

function AvatarForm() {
  const { me } = useAuth();
  const api = useApi();
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
      await api.putAvatar(file);
      setVersion(Date.now());
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
  const api = useApi();
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const action = useAction();

  const save = action.submit(async () => {
    if (next !== confirm) throw new Error("The new passwords do not match.");
    // signs out every other session; this one goes on with the new access token
    await api.changePassword({ current_password: current, new_password: next });
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
  const api = useApi();
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const action = useAction();
  const opener = useRef<HTMLButtonElement>(null);
  const field = useRef<HTMLInputElement>(null);
  useFocusOnToggle(open, field, opener);

  const remove = action.submit(async () => {
    await api.deleteMe(password);
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
