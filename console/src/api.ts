// The one door to the HTTP API: the same endpoints, tokens and scopes as any service.
// The token lives in this tab's session storage only; a 401 forgets it. Every call sends
// the console's language as Accept-Language, so problems (validation and facts errors) and
// explanations come back in it (docs/messages.md).

import { lang } from "./i18n";
import { stringify } from "./jsontext";

const TOKEN_KEY = "kimari.token";

export type Problem = {
  status: number;
  code: string;
  title?: string; // the status in words, in the language asked for
  detail?: string;
  hint?: string;
  errors?: Diagnostic[];
  [key: string]: unknown;
};

export type Location = { file: string; line: number; col: number };

export type Diagnostic = {
  code: string;
  message: string;
  pointer?: string;
  location?: Location;
  hint?: string;
};

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? problem.code);
  }
  get status(): number {
    return this.problem.status;
  }
}

/** The service could not be reached (no network, server down): fetch itself failed. */
export class NetworkError extends Error {
  constructor(readonly reason: unknown) {
    super(String(reason));
    this.name = "NetworkError";
  }
}

/** A mistake found in the browser before anything is sent (its message is for people). */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new Event("kimari-token"));
}

export async function call<T>(
  method: string,
  path: string,
  body?: unknown,
  secret: string | null = token(),
  extra: Record<string, string> = {},
): Promise<T> {
  const headers: Record<string, string> = {
    Accept: "application/json",
    "Accept-Language": lang(),
    ...extra,
  };
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let answer: Response;
  let text: string;
  try {
    answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : stringify(body),
    });
    text = await answer.text();
  } catch (error) {
    throw new NetworkError(error);
  }
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!answer.ok) {
    const problem: Problem =
      parsed && typeof parsed === "object" && "code" in parsed
        ? (parsed as Problem)
        : { status: answer.status, code: "http_" + answer.status, detail: text.slice(0, 200) };
    if (answer.status === 401 && secret === token()) setToken(null);
    throw new ApiError(problem);
  }
  return parsed as T;
}

export const get = <T>(path: string) => call<T>("GET", path);

export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? "?" + text : "";
}
