// The console's words come from one catalogue per language (messages/ja.json,
// messages/en.json, the same keys: a test compares them); none are written in the code.
// Japanese first; the choice is kept in this browser's local storage.

import en from "./messages/en.json";
import ja from "./messages/ja.json";

export type Lang = "ja" | "en";
type Catalogue = Record<string, string>;

const CATALOGUES: Record<Lang, Catalogue> = { ja, en };
const LANG_KEY = "kimari.lang";

let current: Lang = localStorage.getItem(LANG_KEY) === "en" ? "en" : "ja";
document.documentElement.lang = current;

export function lang(): Lang {
  return current;
}

export function setLang(value: Lang): void {
  current = value;
  localStorage.setItem(LANG_KEY, value);
  document.documentElement.lang = value;
  window.dispatchEvent(new Event("kimari-lang"));
}

/** The text of `key`, with {name} holes filled from `params`. A `count` of 1 takes the
 * singular form `key.one` where the catalogue has one ("1 error", not "1 errors"). */
export function t(key: string, params: Record<string, string | number> = {}): string {
  if (params.count === 1 && CATALOGUES[current][key + ".one"] !== undefined) key += ".one";
  const text = CATALOGUES[current][key] ?? CATALOGUES.ja[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (hole, name: string) =>
    name in params ? String(params[name]) : hole,
  );
}

/** A policy's own text ({ja, en}) in the language shown, Japanese when no English. */
export function pick(text: { ja: string; en?: string } | null | undefined): string {
  if (!text) return "";
  return (current === "en" && text.en) || text.ja;
}

export function formatTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(current === "ja" ? "ja-JP" : "en-GB", {
    timeZone: "Asia/Tokyo",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}
