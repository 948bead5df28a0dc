// Pages are addressed by the hash (#/policies/order-holds/try?example=2), so the server
// serves one page at /console and a link can be bookmarked or opened again.

export type Route = { parts: string[]; params: URLSearchParams };

export function current(): Route {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = hash.split("?", 2);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(search) };
}

export function href(parts: string[], params: Record<string, string | undefined> = {}): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return "#/" + parts.map(encodeURIComponent).join("/") + (text ? "?" + text : "");
}

export function go(parts: string[], params: Record<string, string | undefined> = {}): void {
  location.hash = href(parts, params);
}
