// A form built from a JSON Schema (a policy's facts schema, or a flow event's fields):
// one labelled input per field, nested objects as fieldsets, in the schema's order, so
// Tab walks it top to bottom. It edits a JSON value; a field left empty is left out.
// What the form cannot show field by field (arrays, oneOf) is a JSON text box.
import { useState } from "preact/hooks";
import { t } from "./i18n";
import { parseJson, readNumber, stringify } from "./jsontext";
import type { JsonSchema } from "./types";

type Json = unknown;
type Errors = Record<string, string>;

export function FactsForm({
  schema,
  value,
  onChange,
  errors,
  base = "/facts",
}: {
  schema: JsonSchema;
  value: Json;
  onChange: (value: Json) => void;
  errors: Errors;
  base?: string;
}) {
  return (
    <div class="facts-form">
      <Field
        root={schema}
        schema={schema}
        name=""
        pointer={base}
        value={value}
        required
        errors={errors}
        onChange={onChange}
        depth={0}
      />
    </div>
  );
}

function resolve(root: JsonSchema, schema: JsonSchema): JsonSchema {
  let found = schema;
  for (let i = 0; found.$ref && i < 10; i++) {
    const name = found.$ref.replace(/^#\/\$defs\//, "");
    const target = root.$defs?.[name];
    if (!target) break;
    const { $ref: _ignored, ...rest } = found;
    found = { ...target, ...rest };
  }
  return found;
}

function typeOf(schema: JsonSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((k) => k !== "null");
  if (schema.type) return schema.type;
  if (schema.properties) return "object";
  if (schema.enum) return "enum";
  return undefined;
}

/** `value` with `key` set (or removed, for undefined); an object left empty becomes undefined. */
function withKey(value: Json, key: string, child: Json): Json {
  const object = { ...((value && typeof value === "object" && !Array.isArray(value) ? value : {}) as Record<string, Json>) };
  if (child === undefined) delete object[key];
  else object[key] = child;
  return Object.keys(object).length ? object : undefined;
}

function Field(props: {
  root: JsonSchema;
  schema: JsonSchema;
  name: string;
  pointer: string;
  value: Json;
  required: boolean;
  errors: Errors;
  onChange: (value: Json) => void;
  depth: number;
}) {
  const schema = resolve(props.root, props.schema);
  const kind = typeOf(schema);
  if (kind === "object" && schema.properties && props.depth < 8) {
    const object = (props.value && typeof props.value === "object" ? props.value : {}) as Record<string, Json>;
    const required = new Set(schema.required ?? []);
    const body = Object.entries(schema.properties).map(([key, child]) => (
      <Field
        key={key}
        root={props.root}
        schema={child}
        name={key}
        pointer={props.pointer + "/" + key}
        value={object[key]}
        required={required.has(key)}
        errors={props.errors}
        onChange={(next) => props.onChange(withKey(props.value, key, next))}
        depth={props.depth + 1}
      />
    ));
    if (props.depth === 0) return <>{body}</>;
    return (
      <fieldset class="object" data-pointer={props.pointer}>
        <legend>
          {props.name}
          {props.required && <span class="required" title={t("form.required")}>*</span>}
        </legend>
        {schema.description && <p class="description">{schema.description}</p>}
        <ErrorText error={props.errors[props.pointer]} />
        {body}
      </fieldset>
    );
  }
  return <Scalar {...props} schema={schema} kind={kind} />;
}

function ErrorText({ error }: { error?: string }) {
  return error ? <span class="field-error" role="alert">{error}</span> : null;
}

function Scalar(props: {
  schema: JsonSchema;
  kind: string | undefined;
  name: string;
  pointer: string;
  value: Json;
  required: boolean;
  errors: Errors;
  onChange: (value: Json) => void;
}) {
  const { schema, kind, pointer, value } = props;
  const id = "field-" + pointer.replace(/[^A-Za-z0-9_-]/g, "_");
  let error = props.errors[pointer];
  const common = {
    id,
    name: pointer,
    "aria-invalid": error ? ("true" as const) : undefined,
    "aria-describedby": schema.description ? id + "-help" : undefined,
  };
  let input;
  if (schema.enum) {
    input = (
      <select
        {...common}
        value={value === undefined ? "" : JSON.stringify(value)}
        onChange={(e) => {
          const text = (e.target as HTMLSelectElement).value;
          props.onChange(text === "" ? undefined : JSON.parse(text));
        }}
      >
        <option value="">{t("form.unset")}</option>
        {schema.enum.map((option) => (
          <option key={JSON.stringify(option)} value={JSON.stringify(option)}>
            {String(option)}
          </option>
        ))}
      </select>
    );
  } else if (kind === "boolean") {
    input = (
      <select
        {...common}
        value={value === undefined ? "" : String(value)}
        onChange={(e) => {
          const text = (e.target as HTMLSelectElement).value;
          props.onChange(text === "" ? undefined : text === "true");
        }}
      >
        <option value="">{t("form.unset")}</option>
        <option value="true">{t("form.true")}</option>
        <option value="false">{t("form.false")}</option>
      </select>
    );
  } else if (kind === "integer" || kind === "number") {
    // full-width digits fold to ASCII; a number a double cannot hold stays its digits
    // (ExactNumber, sent as typed); a text that is not a number is kept as it is, so the
    // service refuses it too, and is named here beside the field
    if (typeof value === "string") error = readNumber(value, kind === "integer").error ?? error;
    input = (
      <input
        {...common}
        aria-invalid={error ? "true" : undefined}
        type="text"
        inputMode={kind === "integer" ? "numeric" : "decimal"}
        value={value === undefined ? "" : String(value)}
        onChange={(e) => {
          const text = (e.target as HTMLInputElement).value;
          const read = readNumber(text, kind === "integer");
          props.onChange(read.error === undefined ? read.value : text.trim());
        }}
      />
    );
  } else if (kind === "string") {
    input = (
      <input
        {...common}
        type={(schema.format === "date" ? "date" : "text") as "text"}
        placeholder={schema.format === "date-time" ? "2024-10-01T10:00:00+09:00" : undefined}
        value={value === undefined ? "" : String(value)}
        onInput={(e) => {
          const text = (e.target as HTMLInputElement).value;
          props.onChange(text === "" ? undefined : text);
        }}
      />
    );
  } else {
    input = <JsonInput common={common} value={value} onChange={props.onChange} />;
  }
  return (
    <div class={"field" + (error ? " invalid" : "")} data-pointer={pointer}>
      <label for={id}>
        {props.name}
        {props.required && <span class="required" title={t("form.required")}>*</span>}
        {kind && <span class="type">{schema.format ?? kind}</span>}
      </label>
      {input}
      {schema.description && (
        <small id={id + "-help"} class="description">
          {schema.description}
        </small>
      )}
      <ErrorText error={error} />
    </div>
  );
}

function JsonInput({
  common,
  value,
  onChange,
}: {
  common: Record<string, unknown>;
  value: Json;
  onChange: (value: Json) => void;
}) {
  const [text, setText] = useState<string | null>(null);
  const [bad, setBad] = useState<string | null>(null);
  const shown = text ?? (value === undefined ? "" : stringify(value));
  return (
    <>
      <textarea
        {...common}
        rows={2}
        class="json-input"
        value={shown}
        onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
        onBlur={() => {
          if (text === null) return;
          if (text.trim() === "") {
            setBad(null);
            setText(null);
            onChange(undefined);
            return;
          }
          try {
            onChange(parseJson(text));
            setBad(null);
            setText(null);
          } catch (error) {
            setBad(error instanceof Error ? error.message : String(error));
          }
        }}
      />
      {bad && <span class="field-error">{bad}</span>}
    </>
  );
}

/** The problem's errors by JSON pointer, for the form to mark its fields. */
export function errorsByPointer(errors: { pointer?: string; message: string }[] | undefined): Errors {
  const out: Errors = {};
  for (const error of errors ?? []) {
    if (error.pointer) out[error.pointer] = out[error.pointer] ? out[error.pointer] + "; " + error.message : error.message;
  }
  return out;
}
