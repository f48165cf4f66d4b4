/**
 * The server's tag rules (kitch/db/vocabulary.py), checked as the streamer types so a bad tag
 * is explained before anything is sent; the server checks again and has the last word.
 */

export const MAX_TAGS = 10;
export const MAX_TAG_LENGTH = 25;
export const TAG_RULE = "letters, numbers, spaces and - _ + # . & '";

// Controls, line and paragraph separators, bidirectional controls, invisible characters.
const FORBIDDEN = /[\p{Cc}\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u180e\u200b\u2060\ufeff]/u;
const ALLOWED = /^[\p{L}\p{N}\p{M}\p{Co} \-_+#.&'\u200c\u200d]+$/u;
const WORD = /[\p{L}\p{N}\p{Co}]/u;
// a zero-width (non-)joiner only between two letters or numbers
const LONE_JOINER = /(^|[^\p{L}\p{N}\p{Co}])[\u200c\u200d]|[\u200c\u200d]($|[^\p{L}\p{N}\p{Co}])/u;

export type TagCheck = { tag: string; error?: undefined } | { tag?: undefined; error: string };

/** The tag as the server stores it (NFKC, white space squeezed), or why it is refused. */
export function normaliseTag(raw: string): TagCheck {
  if (FORBIDDEN.test(raw)) return { error: "Tags cannot hold control or invisible characters." };
  const tag = raw.normalize("NFKC").split(/\s+/u).filter(Boolean).join(" ");
  if (!tag) return { error: "A tag cannot be empty." };
  if ([...tag].length > MAX_TAG_LENGTH) return { error: `A tag has at most ${MAX_TAG_LENGTH} characters.` };
  if (!ALLOWED.test(tag) || LONE_JOINER.test(tag)) return { error: `A tag may only use ${TAG_RULE}.` };
  if (!WORD.test(tag)) return { error: "A tag needs a letter or a number." };
  return { tag };
}

/** What two tags are compared by (the server folds case the same way, more thoroughly). */
export function tagKey(tag: string): string {
  return tag.normalize("NFKC").split(/\s+/u).filter(Boolean).join(" ").toLowerCase();
}

/**
 * Add the tags written in `text` (comma-separated) to `tags`: duplicates (ignoring case) are
 * skipped. Returns the new list and the first problem met (the rest is still added).
 */
export function addTags(tags: string[], text: string): { tags: string[]; error: string } {
  const out = [...tags];
  let error = "";
  for (const part of text.split(",")) {
    if (!part.trim()) continue;
    const checked = normaliseTag(part);
    if (checked.error !== undefined) {
      error ||= checked.error;
      continue;
    }
    if (out.some((t) => tagKey(t) === tagKey(checked.tag))) continue;
    if (out.length >= MAX_TAGS) {
      error ||= `A channel has at most ${MAX_TAGS} tags.`;
      break;
    }
    out.push(checked.tag);
  }
  return { tags: out, error };
}
