// A policy's YAML as served, with line numbers; one line can be marked and scrolled to.
import { useEffect, useRef } from "preact/hooks";
import { get } from "./api";
import { ErrorBox, Loading, useLoad } from "./components";
import { t } from "./i18n";

type Source = { id: string; revision: string; path: string; text: string };

export function SourceView({ policy, line }: { policy: string; line?: number }) {
  const source = useLoad(() => get<Source>(`/v1/policies/${encodeURIComponent(policy)}/source`), [policy]);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!line || !box.current) return;
    const row = box.current.querySelector<HTMLElement>(`[data-line="${line}"]`);
    if (row) {
      // scroll the source box only, not the whole page
      box.current.scrollTop = row.offsetTop - box.current.clientHeight / 3;
      box.current.scrollIntoView({ block: "nearest" });
    }
  }, [line, source.value]);
  if (source.loading && !source.value) return <Loading />;
  if (source.error) return <ErrorBox error={source.error} />;
  const value = source.value!;
  return (
    <div class="source" aria-label={t("source.title", { path: value.path })}>
      <div class="source-head">
        <code>{value.path}</code> · {t("decision.revision")} <code>{value.revision}</code>
      </div>
      <div class="source-lines" ref={box} tabIndex={0}>
        {value.text.split("\n").map((text, i) => (
          <div
            key={i}
            class={"line" + (line === i + 1 ? " marked" : "")}
            data-line={i + 1}
            id={"L" + (i + 1)}
          >
            <span class="number">{i + 1}</span>
            <span class="text">{text || " "}</span>
          </div>
        ))}
      </div>
    </div>
  );
}
