// Long work runs as a job (an impact replay, a submission, a draft's tests): the answer is
// 202 with the job's address; the console polls GET /v1/jobs/{id} and shows a progress bar
// until it is done, failed or cancelled.
import { useEffect, useRef, useState } from "preact/hooks";
import { call, get } from "./api";
import { Diagnostics } from "./components";
import { t } from "./i18n";
import type { Job } from "./types";

const POLL_MS = 250;

/** Start a job (POST `path` with `body`) and follow it to its end; `onProgress` on each poll. */
export async function runJob<R>(
  path: string,
  body: unknown,
  onProgress: (job: Job<R>) => void,
  isLive: () => boolean = () => true,
): Promise<Job<R>> {
  let job = await call<Job<R>>("POST", path, body);
  onProgress(job);
  while (job.state === "running" && isLive()) {
    await new Promise((done) => setTimeout(done, POLL_MS));
    job = await get<Job<R>>(`/v1/jobs/${encodeURIComponent(job.id)}`);
    onProgress(job);
  }
  return job;
}

/** Whether the component that started a job is still on the page. */
export function useLive(): () => boolean {
  const live = useRef(true);
  useEffect(
    () => () => {
      live.current = false;
    },
    [],
  );
  return () => live.current;
}

export function JobProgress({ job, id }: { job: Job | null; id: string }) {
  if (!job) return null;
  const { done, total } = job.progress;
  const running = job.state === "running";
  return (
    <div class={"job job-" + job.state} id={id} data-state={job.state}>
      <div class="job-line">
        <span class="badge">{t("job.state_" + job.state)}</span>{" "}
        {total ? (
          <progress max={total} value={done} aria-label={t("job.progress")}>
            {done} / {total}
          </progress>
        ) : (
          running && <progress aria-label={t("job.progress")} />
        )}{" "}
        <span class="muted">{total ? t("job.count", { done, total }) : running ? t("job.waiting") : ""}</span>
      </div>
      {job.state === "failed" && job.error && (
        <div class="error" role="alert" data-code={job.error.code}>
          <strong>{t("problem." + job.error.code).startsWith("problem.") ? job.error.code : t("problem." + job.error.code)}</strong>{" "}
          {job.error.message}
          {job.error.errors && job.error.errors.length > 0 && <Diagnostics items={job.error.errors} />}
        </div>
      )}
    </div>
  );
}

/** A job's state held by a component: start it, follow it, keep its last poll. */
export function useJob<R>() {
  const [job, setJob] = useState<Job<R> | null>(null);
  const [failure, setFailure] = useState<unknown>(null);
  const live = useLive();
  const start = async (path: string, body: unknown): Promise<Job<R> | null> => {
    setFailure(null);
    setJob(null);
    try {
      return await runJob<R>(path, body, (j) => live() && setJob(j), live);
    } catch (error) {
      if (live()) setFailure(error);
      return null;
    }
  };
  return { job, failure, start, running: job?.state === "running", reset: () => setJob(null) };
}
