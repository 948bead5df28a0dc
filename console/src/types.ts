// The shapes of the API's answers that the console reads (docs/service.md).
import type { Diagnostic, Location } from "./api";

export type Text = { ja: string; en?: string };

export type PolicySummary = {
  id: string;
  kind: "decision" | "flow" | null;
  title: Text | null;
  revision: string | null;
  status: "valid" | "refused" | "invalid";
  errors: number;
  warnings: number;
};

export type Condition = { text: string; location: Location };

export type RuleDoc = {
  id: string;
  refs: string[];
  label?: Text;
  location: Location;
  conditions: Condition[];
  reason?: { code: string; message: Text; action?: Text };
};

export type Setting = {
  type: string;
  default: unknown;
  enum?: unknown[];
  minimum?: unknown;
  maximum?: unknown;
  label?: Text;
  refs?: string[];
};

export type FlowDoc = {
  initial: string;
  states: { id: string; label: Text; final: boolean; refs: string[] }[];
  roles?: { id: string; label: Text }[];
  events: { name: string; label: Text; fields: Record<string, JsonSchema>; by?: string[] | null }[];
  transitions: {
    id: string;
    from: string[];
    event: string;
    to: string | null;
    refs: string[];
    label?: Text;
  }[];
};

export type PolicyDoc = {
  id: string;
  path: string;
  status: "valid" | "refused" | "invalid";
  errors: Diagnostic[];
  error_text: string[];
  kind?: "decision" | "flow";
  title?: Text;
  revision?: string;
  hit_policy?: string;
  rules?: RuleDoc[];
  derived?: { name: string; expression: string; location: Location; label?: Text }[];
  settings?: Record<string, Setting>;
  outcome?: Record<string, { type: string; merge: string; enum?: unknown[] }>;
  data?: Record<string, { version: string; source: string; count: number } | null>;
  facts_schema?: JsonSchema;
  warnings?: Diagnostic[];
  flow?: FlowDoc;
};

export type JsonSchema = {
  type?: string | string[];
  title?: string;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  format?: string;
  minimum?: number;
  maximum?: number;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  [key: string]: unknown;
};

export type Failed = {
  condition: string;
  location: Location;
  values: Record<string, unknown>;
  error?: string;
};

export type RuleVerdict = {
  rule: string;
  refs: string[];
  location: Location;
  label?: Text;
  verdict: "applied" | "matched" | "failed";
  note?: string;
  failed?: Failed;
};

export type Explanation = {
  derived: { name: string; value: unknown; expression: string; location: Location; label?: Text }[];
  rules: RuleVerdict[];
};

export type Reason = {
  rule: string;
  refs: string[];
  code: string;
  message: Text;
  action?: Text;
  [key: string]: unknown;
};

export type Decision = {
  decision_id: string;
  policy: { id: string; revision: string };
  at: string;
  outcome: Record<string, unknown>;
  reasons: Reason[];
  fired: string[];
  settings?: Record<string, unknown>;
  data?: Record<string, string>;
  explanation?: Explanation;
  explanation_unavailable?: unknown;
  logged_at?: number;
  request?: { facts?: unknown; at?: string; settings?: Record<string, unknown> };
};

export type DecisionRequest = {
  facts: unknown;
  at?: string;
  settings?: Record<string, unknown>;
};

export type Example = {
  name: string;
  location?: Location;
  refs?: string[];
  facts?: unknown;
  at?: string;
  settings?: Record<string, unknown>;
  own_data?: string[];
  expect?: unknown;
  events?: unknown[];
  event?: unknown;
  entity?: unknown;
};

export type Examples = { cases: Example[]; files: Example[]; errors: Diagnostic[] };

export type LoggedDecision = {
  decision_id: string;
  policy: { id: string; revision: string };
  at: string;
  logged_at: number;
  outcome: Record<string, unknown>;
  fired: string[];
  latency_us: number;
};

export type DataSummary = {
  name: string;
  label?: Text;
  version: string | null;
  source: string | null;
  count: number;
  updated_at: number | null;
  file: string | null;
  schema: string;
  key: string | null;
  policies: string[];
  errors: number;
};

export type DataSet = {
  name: string;
  version: string | null;
  source: string | null;
  updated_at: number | null;
  count: number;
  errors: Diagnostic[];
  entries: Record<string, unknown>[];
};

export type Entity = {
  policy: { id: string; revision: string };
  entity: { id: string; version: number; exists: boolean };
  state: { id: string; label?: Text; final: boolean; note?: Text };
  facts: Record<string, unknown>;
  allowed_events: string[];
  created_at?: string | null;
  last_at?: string | null;
  last_event?: string | null;
  state_since?: string | null;
};
