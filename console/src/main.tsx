// The console: sign in with a token, then pages addressed by the hash. Every page reads
// the same HTTP API as a service does; the token is this tab's only credential.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, call, setToken, token } from "./api";
import { type Lang, lang, setLang, t } from "./i18n";
import { current, href, type Route } from "./router";
import { describe } from "./components";
import { SourceView } from "./source";
import { may, whoami } from "./me";
import { DataList, DataPage } from "./pages/Data";
import { EditPage } from "./pages/Edit";
import { EntityPage, FlowList, FlowPage } from "./pages/Flows";
import { LogPage, LoggedDecisionPage } from "./pages/Log";
import { PolicyList, PolicyPage } from "./pages/Policies";
import { ApprovalsPage, RevisionPage, RevisionsPage } from "./pages/Revisions";
import { TryPage } from "./pages/Try";
import type { Whoami } from "./types";
import "./style.css";

function SignIn() {
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<string | null>(null);
  return (
    <main class="sign-in">
      <h1>{t("app.title")}</h1>
      <form
        class="card"
        aria-label={t("signin.title")}
        onSubmit={async (event) => {
          event.preventDefault();
          setError(null);
          try {
            await call("GET", "/v1/policies", undefined, secret.trim());
            setToken(secret.trim());
          } catch (failure) {
            setError(
              failure instanceof ApiError && failure.status === 401
                ? t("signin.rejected")
                : t("signin.failed", { detail: describe(failure) }),
            );
          }
        }}
      >
        <h2>{t("signin.title")}</h2>
        <p class="muted">{t("signin.help")}</p>
        <div class="field">
          <label for="token">{t("signin.token")}</label>
          <input
            id="token"
            type="password"
            autocomplete="off"
            required
            value={secret}
            onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
          />
        </div>
        {error && (
          <div class="error" role="alert">
            {error}
          </div>
        )}
        <div class="submit-row">
          <button type="submit" class="primary" id="sign-in">
            {t("signin.button")}
          </button>
        </div>
      </form>
      <LanguageSwitch />
    </main>
  );
}

function LanguageSwitch() {
  // each language's name in itself, whichever language is shown
  const choices: Lang[] = ["ja", "en"];
  return (
    <div class="language" role="group" aria-label={t("app.language")}>
      {choices.map((choice) => (
        <button
          type="button"
          key={choice}
          lang={choice}
          id={"lang-" + choice}
          aria-pressed={lang() === choice}
          onClick={() => setLang(choice)}
        >
          {t("lang." + choice)}
        </button>
      ))}
    </div>
  );
}

const SECTIONS = [
  { id: "policies", label: "nav.policies" },
  { id: "approvals", label: "nav.approvals", scope: "publish" },
  { id: "log", label: "nav.log" },
  { id: "flows", label: "nav.flows" },
  { id: "data", label: "nav.data" },
];

function Page({ route }: { route: Route }) {
  const [section, a, b, c] = route.parts;
  const keyed = route.parts.join("/") + "?" + route.params.toString();
  switch (section ?? "policies") {
    case "policies":
      if (!a) return <PolicyList />;
      if (b === "try") return <TryPage key={keyed} id={a} from={route.params.get("from")} />;
      if (b === "edit") return <EditPage key={keyed} id={a} from={route.params.get("from")} />;
      if (b === "revisions") return c ? <RevisionPage key={keyed} id={a} number={c} /> : <RevisionsPage key={keyed} id={a} />;
      if (b === "source") {
        const line = Number(route.params.get("line")) || undefined;
        return (
          <>
            <h1>
              {t("source.heading")} <code class="muted">{a}</code>
            </h1>
            <p>
              <a href={href(["policies", a])}>{t("try.back")}</a>
            </p>
            <SourceView policy={a} line={line} />
          </>
        );
      }
      return <PolicyPage id={a} />;
    case "approvals":
      return <ApprovalsPage key={keyed} />;
    case "log":
      return a ? <LoggedDecisionPage id={a} /> : <LogPage key={keyed} params={route.params} />;
    case "flows":
      if (!a) return <FlowList />;
      return b ? <EntityPage key={keyed} policy={a} entity={b} move={route.params.get("move")} /> : <FlowPage id={a} />;
    case "data":
      return a ? <DataPage name={a} /> : <DataList />;
    default:
      return <p class="error">{t("app.no_page")}</p>;
  }
}

function App() {
  const [route, setRoute] = useState(current());
  const [signedIn, setSignedIn] = useState(token() !== null);
  const [, setLanguage] = useState(lang());
  const [me, setMe] = useState<Whoami | undefined>(undefined);
  useEffect(() => {
    if (!signedIn) return setMe(undefined);
    whoami().then(setMe, () => setMe(undefined));
  }, [signedIn]);
  useEffect(() => {
    const onHash = () => setRoute(current());
    const onToken = () => setSignedIn(token() !== null);
    const onLang = () => setLanguage(lang());
    window.addEventListener("hashchange", onHash);
    window.addEventListener("kimari-token", onToken);
    window.addEventListener("kimari-lang", onLang);
    return () => {
      window.removeEventListener("hashchange", onHash);
      window.removeEventListener("kimari-token", onToken);
      window.removeEventListener("kimari-lang", onLang);
    };
  }, []);
  useEffect(() => {
    document.title = `${t("app.title")} - kimari`;
  });
  if (!signedIn) return <SignIn />;
  const section = route.parts[0] ?? "policies";
  return (
    <>
      <header class="top">
        <a class="brand" href="#/policies">
          kimari <span>{t("app.title")}</span>
        </a>
        <nav aria-label={t("app.navigation")}>
          {SECTIONS.filter((s) => !s.scope || may(me, s.scope)).map((s) => (
            <a key={s.id} href={"#/" + s.id} class={section === s.id ? "active" : ""} aria-current={section === s.id ? "page" : undefined}>
              {t(s.label)}
            </a>
          ))}
          <a href="/docs">{t("nav.docs")}</a>
        </nav>
        <div class="tools">
          {me && (
            <span class="principal" id="principal" title={me.scopes.join(", ")}>
              {t("signin.as", { principal: me.principal })}
            </span>
          )}
          <LanguageSwitch />
          <button type="button" id="sign-out" onClick={() => setToken(null)}>
            {t("signin.out")}
          </button>
        </div>
      </header>
      <main>
        <Page route={route} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
