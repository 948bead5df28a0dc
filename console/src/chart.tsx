// Decisions per day and outcome, from the log (GET /v1/policies/{id}/stats), as a stacked
// bar chart. Chart.js is loaded when a chart is first shown, with only the parts drawn.
import { useEffect, useRef } from "preact/hooks";
import { get } from "./api";
import { ErrorBox, Loading, useLoad } from "./components";
import { lang, t } from "./i18n";

type Stats = {
  field: string | null;
  days: number;
  outcomes: string[];
  series: { day: string; counts: Record<string, number> }[];
};

const COLOURS = ["#c0392b", "#2e86c1", "#27ae60", "#8e44ad", "#d68910", "#566573", "#17a589"];

export function DailyChart({ policy, days = 14 }: { policy: string; days?: number }) {
  const stats = useLoad(
    () => get<Stats>(`/v1/policies/${encodeURIComponent(policy)}/stats?days=${days}`),
    [policy, days],
  );
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const value = stats.value;
    if (!value || !canvas.current) return;
    let chart: { destroy(): void } | null = null;
    let live = true;
    import("chart.js").then(({ Chart, BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip }) => {
      if (!live || !canvas.current) return;
      Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);
      chart = new Chart(canvas.current, {
        type: "bar",
        data: {
          labels: value.series.map((s) => s.day.slice(5)),
          datasets: value.outcomes.map((label, i) => ({
            label,
            data: value.series.map((s) => s.counts[label] ?? 0),
            backgroundColor: COLOURS[i % COLOURS.length],
          })),
        },
        options: {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          locale: lang() === "ja" ? "ja-JP" : "en-GB",
          scales: {
            x: { stacked: true },
            y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
          },
        },
      });
      canvas.current.dataset.ready = "true";
    });
    return () => {
      live = false;
      chart?.destroy();
    };
  }, [stats.value]);
  if (stats.loading && !stats.value) return <Loading />;
  if (stats.error) return <ErrorBox error={stats.error} />;
  const total = stats.value!.series.reduce(
    (sum, s) => sum + Object.values(s.counts).reduce((a, b) => a + b, 0),
    0,
  );
  return (
    <figure class="chart">
      <div class="chart-box">
        <canvas ref={canvas} role="img" aria-label={t("chart.label", { days, total })} />
      </div>
      <figcaption>
        {t("chart.caption", { days, total, field: stats.value!.field ?? "-" })}
      </figcaption>
    </figure>
  );
}
