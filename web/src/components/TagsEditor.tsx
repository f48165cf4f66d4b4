/**
 * The tags of a channel as removable chips and a text box: Enter or a comma adds what was
 * typed (several at once when pasted with commas), Backspace in an empty box removes the last
 * tag, each chip has its own remove button. The rules are checked as the streamer types
 * (lib/tags.ts); the parent reads the list with `commit` so text still in the box is not lost.
 */
import { useState } from "react";
import type { KeyboardEvent } from "react";
import { addTags, MAX_TAGS, TAG_RULE } from "../lib/tags";

export function TagsEditor({
  id,
  tags,
  onTags,
  pending,
  onPending,
}: {
  id: string;
  tags: string[];
  onTags: (tags: string[]) => void;
  /** The text typed and not yet added (owned by the parent, which adds it when saving). */
  pending: string;
  onPending: (text: string) => void;
}) {
  const [error, setError] = useState("");

  const add = (text: string) => {
    const added = addTags(tags, text);
    onTags(added.tags);
    setError(added.error);
  };

  const onChange = (value: string) => {
    // a comma ends a tag: add everything before the last comma, keep the rest in the box
    const cut = value.lastIndexOf(",");
    if (cut >= 0) {
      add(value.slice(0, cut));
      onPending(value.slice(cut + 1).trimStart());
    } else {
      onPending(value);
      setError("");
    }
  };

  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Enter") {
      e.preventDefault(); // not the form's submit: Enter adds the tag
      if (pending.trim()) {
        add(pending);
        onPending("");
      }
    } else if (e.key === "Backspace" && !pending && tags.length > 0) {
      onTags(tags.slice(0, -1));
    }
  };

  return (
    <div className="tags-editor">
      <label htmlFor={id}>Tags</label>
      {tags.length > 0 && (
        <ul className="tags tags-editing" aria-label="Added">
          {tags.map((tag) => (
            <li key={tag} className="tag tag-chip">
              <span>{tag}</span>
              <button
                type="button"
                className="tag-remove"
                aria-label={`Remove tag ${tag}`}
                onClick={() => onTags(tags.filter((t) => t !== tag))}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <input
        id={id}
        value={pending}
        maxLength={300}
        placeholder={tags.length >= MAX_TAGS ? "That is 10 tags" : "Add a tag and press Enter"}
        aria-describedby={`${id}-help${error ? ` ${id}-error` : ""}`}
        aria-invalid={error ? true : undefined}
        onChange={(e) => onChange(e.target.value)}
        onKeyDown={onKeyDown}
      />
      <p id={`${id}-help`} className="help">
        {tags.length} of {MAX_TAGS} tags. Up to 25 characters each: {TAG_RULE}. Enter or a comma adds
        one.
      </p>
      {error && (
        <p id={`${id}-error`} className="field-error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
