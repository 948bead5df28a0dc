// /docs: Swagger UI over /openapi.json, bundled here (no CDN). The document needs a token
// with the decide scope: the console's, from this tab's session storage, or one asked for.
import SwaggerUI from "swagger-ui-dist/swagger-ui-es-bundle.js";
import "swagger-ui-dist/swagger-ui.css";
import { setToken, token } from "./api";
import { t } from "./i18n";
import "./docs.css";

function bar(): void {
  const host = document.getElementById("docs-bar")!;
  host.replaceChildren();
  const back = document.createElement("a");
  back.href = "/console/";
  back.textContent = t("docs.back");
  host.append(back);
  if (token()) return;
  const form = document.createElement("form");
  form.setAttribute("aria-label", t("signin.title"));
  const label = document.createElement("label");
  label.htmlFor = "token";
  label.textContent = t("signin.token");
  const input = document.createElement("input");
  input.id = "token";
  input.type = "password";
  input.required = true;
  const button = document.createElement("button");
  button.type = "submit";
  button.textContent = t("signin.button");
  form.append(label, input, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    start();
  });
  host.append(form);
}

function start(): void {
  bar();
  if (!token()) return;
  SwaggerUI({
    url: "/openapi.json",
    dom_id: "#swagger",
    deepLinking: true,
    validatorUrl: null,
    tryItOutEnabled: false,
    requestInterceptor: (request: { headers: Record<string, string> }) => {
      const secret = token();
      if (secret && !request.headers.Authorization) request.headers.Authorization = `Bearer ${secret}`;
      return request;
    },
  });
}

start();
