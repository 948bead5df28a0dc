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
  publication?: number | null;
  unserved?: { state: string; revision: string } | null;
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
    by?: string[] | null;
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
  policy: { id: string; revision: string; publication?: number };
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
  allowed_roles?: Record<string, string[] | null>;
  created_at?: string | null;
  last_at?: string | null;
  last_event?: string | null;
  state_since?: string | null;
};

// -- who the token is (GET /v1/whoami) ---------------------------------------------------
export type Whoami = { principal: string; scopes: string[]; roles: string[] };

// -- the lifecycle (docs/lifecycle.md) -----------------------------------------------------
export type TestFailure = { file: string; line: number; col?: number; name: string; failures: string[] };

/** A published flow that consults a decision policy, tested against the submitted
 * revision of that policy (kept in the submission's tests). */
export type ConsultingFlow = {
  policy: string;
  ref: string;
  revision: string;
  cases: number;
  passed: number;
  failed: number;
  errors: number;
};

export type TestsReport = {
  cases: number;
  passed: number;
  failed: number;
  errors: number;
  file?: string;
  failures?: TestFailure[];
  problems?: string[];
  uncovered_rules?: string[];
  note?: string;
  consulting_flows?: ConsultingFlow[];
};

export type Transition = { from: string; to: string; count: number };

export type ImpactSummary = {
  before?: { label: string; revision: string; number: number | null };
  replayed: number;
  changed: number;
  unchanged: number;
  rules_only: number;
  invalid: number;
  failed: number;
  transitions: Record<string, Transition[]>;
  rules: { newly_fire: Record<string, number>; stop_firing: Record<string, number> };
  window_days?: number;
  note?: string;
};

export type ImpactSide = {
  outcome: Record<string, unknown>;
  fired: string[];
  reasons?: Reason[];
  explanation?: Explanation;
  error?: unknown;
};

export type ImpactReport = ImpactSummary & {
  policy: string;
  before: { label: string; revision: string; number: number | null };
  after: { label: string; revision: string; number: number | null };
  source: { log?: string; file?: string; since_ms?: number | null; until_ms?: number | null };
  scanned: number;
  not_reproduced: number;
  invalid_facts: { code: string; pointer: string; message: string; count: number; decisions: string[] }[];
  failures: { side: string; code: string; pointer?: string; message: string; count: number; decisions: string[] }[];
  changes: {
    decision_id: string;
    at: string;
    before: Record<string, unknown>;
    after: Record<string, unknown>;
    fired: { before: string[]; after: string[] };
  }[];
  samples: { decision_id: string; at: string; before: ImpactSide; after: ImpactSide }[];
  seconds?: number;
  cancelled?: boolean;
};

export type RevisionState = "draft" | "pending" | "published" | "retired" | "rejected";

export type RevisionRecord = {
  policy: string;
  number: number;
  ref: string;
  revision: string;
  state: RevisionState;
  base: number | null;
  author: string;
  created_at: number;
  message: string;
  data: Record<string, string>;
  tests: TestsReport | null;
  impact: ImpactSummary | null;
  approver: string | null;
  approved_at: number | null;
  publications?: number[];
  stale?: boolean;
};

export type Publication = {
  publication: number;
  policy: string;
  number: number;
  revision: string;
  kind: "bootstrap" | "approval" | "direct" | "rollback";
  principal: string;
  published_at: number;
  message: string;
};

export type RevisionList = {
  policy: string;
  published: Publication | null;
  approvals_required: number;
  revisions: RevisionRecord[];
};

export type RevisionDetail = Omit<RevisionRecord, "publications"> & {
  source: string | null;
  files: Record<string, string>;
  tests_source: string | null;
  path: string | null;
  publications: Publication[];
};

export type Job<R = unknown> = {
  id: string;
  kind: "impact" | "submit" | "tests";
  policy: string;
  state: "running" | "done" | "failed" | "cancelled";
  principal: string;
  created_at: number;
  finished_at: number | null;
  progress: { done: number; total: number | null };
  report?: R | null;
  error?: { code: string; status?: number; message?: string; errors?: Diagnostic[] } | null;
};

export type Validation = {
  policy: string;
  valid: boolean;
  revision: string | null;
  errors: Diagnostic[];
  warnings: Diagnostic[];
  tests: { checked: boolean; errors: Diagnostic[] };
};

export type DiffSide = { label: string; revision: string; number: number | null; state: string | null; path: string };

export type Diff = {
  policy: string;
  from: DiffSide | null;
  to: DiffSide | null;
  identical: boolean;
  changes: Record<string, unknown>;
  text: string;
};

export type AuditEntry = {
  seq: number;
  at: number;
  principal: string;
  action: string;
  policy: string;
  number: number | null;
  detail: Record<string, unknown>;
};

export type DataVersion = { version: string; source: "file" | "api"; created_at: number; count: number; current: boolean };
export type DataChange = { number: number; action: "replaced" | "reset"; version: string | null; principal: string; at: number };
export type DataVersions = {
  name: string;
  current: string | null;
  versions: DataVersion[];
  next_before: string | null; // ?before= of the next page of versions
  changes: DataChange[];
  next_changes_before: number | null; // ?changes_before= of the next page of changes
};
