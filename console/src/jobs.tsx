// Long work runs as a job (an impact replay, a submission, a draft's tests): the answer is
// 202 with the job's address; the console polls GET /v1/jobs/{id} and shows a progress bar
// until it is done, failed or cancelled.
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, NetworkError, call, get } from "./api";
import { ErrorBox, useBusy } from "./components";
import { t } from "./i18n";
import type { Job } from "./types";

const POLL_MS = 250;
// a poll that gets no answer (or a server error) is asked again after these pauses, about
// 11 s in all, before the job is given up as lost: a blip must not end it
const RETRY_MS = [500, 1000, 2000, 4000, 4000];

/** A job as last seen, and whether its last poll failed and is being asked again. */
export type Followed<R = unknown> = Job<R> & { reconnecting?: boolean };

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** A failure that asking again may mend: no answer, the server's error, a busy service. */
function transient(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  return error instanceof ApiError && (error.status >= 500 || error.status === 408 || error.status === 429);
}

/** Start a job (POST `path` with `body`) and follow it to its end; `onProgress` on each poll. */
export async function runJob<R>(
  path: string,
  body: unknown,
  onProgress: (job: Followed<R>) => void,
  isLive: () => boolean = () => true,
): Promise<Job<R>> {
  const job = await call<Job<R>>("POST", path, body);
  onProgress(job);
  return followJob(job, onProgress, isLive);
}

/** Follow a job already started (one still running when its page was left) to its end. */
export async function followJob<R>(
  job: Job<R>,
  onProgress: (job: Followed<R>) => void,
  isLive: () => boolean = () => true,
): Promise<Job<R>> {
  while (job.state === "running" && isLive()) {
    await sleep(POLL_MS);
    job = await poll(job, onProgress, isLive);
    onProgress(job);
  }
  return job;
}

/** The job's state now, asked again after a transient failure; the last failure thrown. */
async function poll<R>(job: Job<R>, onProgress: (job: Followed<R>) => void, isLive: () => boolean): Promise<Job<R>> {
  for (let failures = 0; ; failures++) {
    try {
      return await get<Job<R>>(`/v1/jobs/${encodeURIComponent(job.id)}`);
    } catch (error) {
      if (!transient(error) || failures >= RETRY_MS.length || !isLive()) throw error;
      onProgress({ ...job, reconnecting: true });
      await sleep(RETRY_MS[failures]);
    }
  }
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

export function JobProgress({ job, id }: { job: Followed | null; id: string }) {
  if (!job) return null;
  const { done, total } = job.progress;
  const running = job.state === "running";
  return (
    <div class={"job job-" + job.state} id={id} data-state={job.state} data-reconnecting={job.reconnecting ? "true" : undefined}>
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
      {job.reconnecting && (
        <p class="warn" role="status">
          {t("job.reconnecting")}
        </p>
      )}
      {job.state === "failed" && job.error && <ErrorBox error={jobError(job.error)} />}
    </div>
  );
}

/** A job's error as the service's refusal it is: shown with the same words, its code
 * beside them; a lone error without a place is its message. */
function jobError(error: NonNullable<Job["error"]>): ApiError {
  const errors = error.errors ?? [];
  const lone = errors.length === 1 && !errors[0].pointer && !errors[0].location ? errors[0].message : undefined;
  return new ApiError({ status: error.status ?? 500, code: error.code, detail: error.message ?? lone, errors });
}

/** A job's state held by a component: start it, follow it, keep its last poll. It runs
 * from the click until it is followed to its end: a second click meanwhile starts nothing.
 * A job `seen` before (kept while its page was left) is shown again, and followed if it ran. */
export function useJob<R>(seen: Followed<R> | null = null) {
  const [job, setJob] = useState<Followed<R> | null>(seen);
  const [failure, setFailure] = useState<unknown>(null);
  const live = useLive();
  const { busy, run } = useBusy();
  const shown = (j: Followed<R>) => live() && setJob(j);
  const follow = async (first: Followed<R> | null, toEnd: () => Promise<Job<R>>): Promise<Job<R> | null> =>
    (await run(async () => {
      setFailure(null);
      setJob(first);
      try {
        return await toEnd();
      } catch (error) {
        // lost (or refused): no longer shown as running, its button free again
        if (live()) {
          setJob(null);
          setFailure(error);
        }
        return null;
      }
    })) ?? null;
  const start = (path: string, body: unknown) => follow(null, () => runJob<R>(path, body, shown, live));
  // `seen` running (its page was left before its end): followed again, to its end
  useEffect(() => {
    if (seen?.state === "running") follow(seen, () => followJob<R>(seen, shown, live));
  }, []);
  return { job, failure, start, running: busy || job?.state === "running", reset: () => setJob(null) };
}
