/**
 * Shared form pieces: labelled fields with help text, the busy/error/message state of an action
 * that talks to the API, and the status line under a form.
 */
import { useCallback, useEffect, useRef, useState } from "react";
import type {
  FormEvent,
  InputHTMLAttributes,
  ReactNode,
  Ref,
  RefObject,
  TextareaHTMLAttributes,
} from "react";
import { ErrorBox, messageOf, Notice } from "./bits";

/** What `useAction` tracks for one button or form. */
export interface Action {
  busy: boolean;
  error: string;
  message: string;
  /**
   * Run `work`: busy while it runs, old error and message cleared first; a string it returns
   * becomes the message, a throw becomes the error. Resolves to true when `work` succeeded.
   */
  run(work: () => Promise<string | void>): Promise<boolean>;
  /** A form `onSubmit` handler that prevents the page load and runs `work`. */
  submit(work: () => Promise<string | void>): (e: FormEvent) => void;
  /** Show an error without running anything (e.g. a failed check before the request). */
  fail(error: string): void;
}

export function useAction(): Action {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const [message, setMessage] = useState("");

  const run = useCallback(async (work: () => Promise<string | void>): Promise<boolean> => {
    setBusy(true);
    setError("");
    setMessage("");
    try {
      const done = await work();
      if (done) setMessage(done);
      return true;
    } catch (e) {
      setError(messageOf(e));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);

  const submit = useCallback(
    (work: () => Promise<string | void>) => (e: FormEvent) => {
      e.preventDefault();
      void run(work);
    },
    [run],
  );

  const fail = useCallback((why: string) => {
    setMessage("");
    setError(why);
  }, []);

  return { busy, error, message, run, submit, fail };
}

/** The message (a polite status) and the error (an alert) of an action. */
export function ActionStatus({ action }: { action: Pick<Action, "error" | "message"> }) {
  return (
    <>
      <Notice>{action.message}</Notice>
      <ErrorBox>{action.error}</ErrorBox>
    </>
  );
}

interface FieldOwn {
  id: string;
  label: ReactNode;
  /** Help text under the field, announced with it (aria-describedby `${id}-help`). */
  help?: ReactNode;
  /** Called with the new value on every change (instead of a raw `onChange`). */
  onValue?: (value: string) => void;
}

function HelpText({ id, help }: { id: string; help?: ReactNode }) {
  return help ? (
    <p id={`${id}-help`} className="help">
      {help}
    </p>
  ) : null;
}

/** A label, an input and its help text. Other props go to the `<input>`. */
export function Field({
  id,
  label,
  help,
  onValue,
  ref,
  ...input
}: FieldOwn & InputHTMLAttributes<HTMLInputElement> & { ref?: Ref<HTMLInputElement> }) {
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <input
        ref={ref}
        id={id}
        aria-describedby={help ? `${id}-help` : undefined}
        onChange={onValue ? (e) => onValue(e.target.value) : undefined}
        {...input}
      />
      <HelpText id={id} help={help} />
    </>
  );
}

/** A label, a textarea and its help text. Other props go to the `<textarea>`. */
export function TextAreaField({
  id,
  label,
  help,
  onValue,
  ...area
}: FieldOwn & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return (
    <>
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        aria-describedby={help ? `${id}-help` : undefined}
        onChange={onValue ? (e) => onValue(e.target.value) : undefined}
        {...area}
      />
      <HelpText id={id} help={help} />
    </>
  );
}

/** A new password (at least 8 characters) and its repetition, as on sign-up and in settings. */
export function NewPasswordFields({
  idPrefix,
  label,
  password,
  confirm,
  onPassword,
  onConfirm,
}: {
  idPrefix: string;
  label: string;
  password: string;
  confirm: string;
  onPassword: (v: string) => void;
  onConfirm: (v: string) => void;
}) {
  return (
    <>
      <Field
        id={`${idPrefix}-password`}
        label={label}
        name="password"
        type="password"
        autoComplete="new-password"
        required
        minLength={8}
        help="At least 8 characters."
        value={password}
        onValue={onPassword}
      />
      <Field
        id={`${idPrefix}-confirm`}
        label={`Repeat ${label.toLowerCase()}`}
        name="confirm"
        type="password"
        autoComplete="new-password"
        required
        value={confirm}
        onValue={onConfirm}
      />
    </>
  );
}

/**
 * Keeps keyboard focus in place when a control swaps what is shown: when `open` turns true
 * `whenOpen` gets focus, when it turns false again `whenClosed` does (nothing on mount).
 */
export function useFocusOnToggle(
  open: boolean,
  whenOpen: RefObject<HTMLElement | null>,
  whenClosed: RefObject<HTMLElement | null>,
): void {
  const previous = useRef(open);
  useEffect(() => {
    if (previous.current === open) return;
    previous.current = open;
    (open ? whenOpen : whenClosed).current?.focus();
  }, [open, whenOpen, whenClosed]);
}
