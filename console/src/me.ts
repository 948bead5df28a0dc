// Who the token is (GET /v1/whoami): its principal, scopes and the roles its actors may
// claim. Asked once per token; the console offers only what the token may do (the lifecycle
// pages with `publish`, the roles a flow event may claim), and the service refuses the rest
// anyway.
import { get } from "./api";
import type { Whoami } from "./types";

let asked: Promise<Whoami> | null = null;

export function whoami(): Promise<Whoami> {
  if (!asked) {
    asked = get<Whoami>("/v1/whoami");
    asked.catch(() => {
      asked = null; // ask again next time
    });
  }
  return asked;
}

window.addEventListener("kimari-token", () => {
  asked = null;
});

export function may(me: Whoami | undefined, scope: string): boolean {
  return !!me && me.scopes.includes(scope);
}

/** Whether an actor sent with this token may claim `role`. */
export function mayClaim(me: Whoami | undefined, role: string): boolean {
  return !!me && (me.roles.includes("*") || me.roles.includes(role));
}
