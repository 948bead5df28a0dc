// JSON as people type it: a syntax mistake named by its line and column (not the
// browser's English), numbers typed with the IME (full-width digits) read as numbers, and
// a number the browser cannot hold exactly (past 2^53, or more than 15 significant digits)
// kept as its digits and sent as typed, never rounded.
import { InputError } from "./api";
import { t } from "./i18n";

/** A number kept as the digits typed; `stringify` writes it as a JSON number token. */
export class ExactNumber {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
  toJSON(): string {
    return this.text; // only for JSON.stringify elsewhere: `stringify` writes the number
  }
}

/** JSON.stringify for the console's values, with ExactNumber written as its digits. */
export function stringify(value: unknown, indent = 0): string {
  const pad = (depth: number) => (indent ? "\n" + " ".repeat(indent * depth) : "");
  const write = (v: unknown, depth: number): string | undefined => {
    if (v instanceof ExactNumber) return v.text;
    if (v === null) return "null";
    if (Array.isArray(v)) {
      if (v.length === 0) return "[]";
      const items = v.map((item) => write(item, depth + 1) ?? "null");
      return "[" + items.map((item) => pad(depth + 1) + item).join(",") + pad(depth) + "]";
    }
    if (typeof v === "object") {
      if (typeof (v as { toJSON?: unknown }).toJSON === "function") return JSON.stringify(v);
      const items: string[] = [];
      for (const [key, child] of Object.entries(v as Record<string, unknown>)) {
        const written = write(child, depth + 1);
        if (written !== undefined) items.push(pad(depth + 1) + JSON.stringify(key) + (indent ? ": " : ":") + written);
      }
      return items.length ? "{" + items.join(",") + pad(depth) + "}" : "{}";
    }
    return JSON.stringify(v);
  };
  return write(value, 0) ?? "null";
}

/** The JSON number token `text` (ASCII) as a number, or as an ExactNumber when a double
 * would not hold it exactly. */
function numberOf(text: string): number | ExactNumber {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) return Number(text);
  const [, sign, whole, fraction = "", exponent] = match;
  const digits = (whole + fraction).replace(/^0+/, "").replace(/0+$/, "");
  const value = Number(text);
  const isInteger = !fraction && exponent === undefined;
  const exact = isInteger ? Number.isSafeInteger(value) : digits.length <= 15 && Number.isFinite(value) && (value !== 0 || digits === "");
  if (exact) return value;
  // a JSON number token: no leading zeros, no plus sign
  const cleanWhole = whole.replace(/^0+(?=\d)/, "");
  return new ExactNumber(sign + cleanWhole + (fraction ? "." + fraction : "") + (exponent !== undefined ? "e" + exponent : ""));
}

/** JSON.parse that keeps numbers a double cannot hold as their digits where the browser
 * gives the source text to a reviver (Chromium does); a syntax mistake as an InputError
 * with its line and column. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text, function (this: unknown, _key: string, value: unknown, context?: { source?: string }) {
      if (typeof value === "number" && context?.source) return numberOf(context.source);
      return value;
    } as (key: string, value: unknown) => unknown);
  } catch (error) {
    throw syntaxError(text, error);
  }
}

/** Where JSON.parse stopped, as a line and column of `text` (1-based). */
export function syntaxError(text: string, error: unknown): InputError {
  if (text.trim() === "") return new InputError(t("json.empty"));
  const message = error instanceof Error ? error.message : String(error);
  let line: number | undefined;
  let col: number | undefined;
  let position: number | undefined;
  const lineCol = /line (\d+) column (\d+)/.exec(message);
  const at = /position (\d+)/.exec(message);
  if (at) position = Number(at[1]);
  else if (!lineCol) position = stopsAt(text);
  if (lineCol) {
    line = Number(lineCol[1]);
    col = Number(lineCol[2]);
  } else if (position !== undefined) {
    const before = text.slice(0, position);
    line = before.split("\n").length;
    col = position - before.lastIndexOf("\n");
  }
  if (position === undefined && line !== undefined && col !== undefined) {
    const lines = text.split("\n");
    position = lines.slice(0, line - 1).reduce((sum, l) => sum + l.length + 1, 0) + col - 1;
  }
  let words = line !== undefined ? t("json.syntax_at", { line, col: col ?? 1 }) : t("json.syntax");
  if (position !== undefined) {
    const found = text.charAt(position);
    const previous = text.slice(0, position).trimEnd().slice(-1);
    if ((found === "]" || found === "}") && previous === ",") words += " " + t("json.trailing_comma");
    else if (position >= text.length) words += " " + t("json.unfinished");
    else if (found.trim()) words += " " + t("json.near", { found });
  }
  return new InputError(words);
}

/** What a number field's text says: nothing, a number (exact), or why it is not one.
 * Full-width digits, signs and the full-width point are folded to ASCII first (NFKC). */
export function readNumber(
  raw: string,
  integer: boolean,
): { value: number | ExactNumber | undefined; error?: undefined } | { value?: undefined; error: string } {
  let text = raw.normalize("NFKC").trim();
  if (text === "") return { value: undefined };
  text = text.replace(/^[\u2212\u2010-\u2015\u30fc]/, "-").replace(/^\+/, "");
  if (/^-?\d+$/.test(text)) return { value: numberOf(text) };
  if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(text)) {
    if (integer) return { error: t("form.integer_only") };
    return { value: numberOf(text) };
  }
  return { error: t("form.number_format") };
}

/** Where a JSON text stops being JSON (the offset of the first character that cannot be
 * there), read by the grammar itself: the browser does not always say. */
export function stopsAt(text: string): number {
  let at = 0;
  const fail = (): never => {
    throw at;
  };
  const space = () => {
    while (at < text.length && " \t\n\r".includes(text[at])) at++;
  };
  const literal = (word: string) => {
    for (const char of word) {
      if (text[at] !== char) fail();
      at++;
    }
  };
  const string = () => {
    at++; // the opening quote
    while (at < text.length && text[at] !== '"') {
      const char = text[at];
      if (char < " ") fail();
      if (char === "\\") {
        at++;
        if (text[at] === "u") {
          at++;
          for (let i = 0; i < 4; i++, at++) if (!/[0-9a-fA-F]/.test(text[at] ?? "")) fail();
          continue;
        }
        if (!'"\\/bfnrt'.includes(text[at] ?? "x")) fail();
      }
      at++;
    }
    if (at >= text.length) fail();
    at++;
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(at));
    if (!match) fail();
    at += match![0].length;
  };
  const value = (): void => {
    space();
    const char = text[at];
    if (char === "{") {
      at++;
      space();
      if (text[at] === "}") return void at++;
      for (;;) {
        space();
        if (text[at] !== '"') fail();
        string();
        space();
        if (text[at] !== ":") fail();
        at++;
        value();
        space();
        if (text[at] === ",") at++;
        else if (text[at] === "}") return void at++;
        else fail();
      }
    }
    if (char === "[") {
      at++;
      space();
      if (text[at] === "]") return void at++;
      for (;;) {
        value();
        space();
        if (text[at] === ",") at++;
        else if (text[at] === "]") return void at++;
        else fail();
      }
    }
    if (char === '"') return string();
    if (char === "t") return literal("true");
    if (char === "f") return literal("false");
    if (char === "n") return literal("null");
    if (char === "-" || (char >= "0" && char <= "9")) return number();
    fail();
  };
  try {
    value();
    space();
    return at < text.length ? at : text.length;
  } catch (stop) {
    return Math.min(typeof stop === "number" ? stop : 0, text.length);
  }
}
