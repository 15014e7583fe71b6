// Stats: due now, reviewed today, streak, 30-day retention and totals (GET /stats); two
// charts, the cards due on each of the next 30 study days (GET /stats/forecast) and the
// reviews of the last 30 with the share rated "again" (GET /stats/history); then the words by
// schedule stage and by the learner's own difficulty rating.
import * as api from "./api.js";
import { barChart, shortDate } from "./charts.js";
import { $, STATE_LABELS, h } from "./ui.js";

const DAYS = 30;

export const views = [{ name: "stats", title: "Stats", enter: load, reset }];

export function wire() {
  // Nothing to wire: the figures are read-only.
}

function reset() {
  for (const id of ["#forecast-chart", "#history-chart", "#forecast-summary", "#history-summary"]) {
    $(id).replaceChildren();
  }
  $("#stats-list").replaceChildren();
  $("#stats-state").replaceChildren();
  $("#stats-difficulty").replaceChildren();
}

async function load() {
  const [stats, forecast, history] = await Promise.all([
    api.requestJson("/stats"),
    api.requestJson(`/stats/forecast?days=${DAYS}`),
    api.requestJson(`/stats/history?days=${DAYS}`),
  ]);
  showTotals(stats);
  showForecast(forecast.items);
  showHistory(history.items);
  showByState(stats.by_state);
  showByDifficulty(stats.by_difficulty);
}

function showTotals(stats) {
  const learnt = stats.retention_30d !== null;
  const retention = learnt ? `${Math.round(stats.retention_30d * 100)}%` : "–";
  const retentionNote = learnt ? null : "no reviews of learnt words yet";
  const days = stats.streak_days === 1 ? "day" : "days";
  $("#stats-list").replaceChildren(
    pair("Due now", String(stats.due)),
    pair("Reviewed today", String(stats.reviews_today)),
    pair("Streak", `${stats.streak_days} ${days}`),
    pair("Retention, 30 days", retention, retentionNote),
    pair("Words", String(stats.words)),
    pair("New words", String(stats.new)),
    pair("Reviews in total", String(stats.reviews_total)),
  );
}

function plural(n, word) {
  return `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;
}

function percent(part, whole) {
  return whole ? `${Math.round((100 * part) / whole)}%` : "–";
}

function showForecast(days) {
  const total = days.reduce((sum, day) => sum + day.due, 0);
  const summary = `${plural(total, "card")} due in ${DAYS} days, ${days[0].due} of them today.`;
  $("#forecast-summary").textContent = summary;
  $("#forecast-chart").replaceChildren(
    barChart(days, {
      value: (day) => day.due,
      describe: (day) => `${shortDate(day.date)}: ${plural(day.due, "card")} due`,
      label: `Cards due per day: ${summary}`,
    }),
  );
}

function showHistory(days) {
  const reviews = days.reduce((sum, day) => sum + day.reviews, 0);
  const again = days.reduce((sum, day) => sum + day.again, 0);
  const summary = `${plural(reviews, "review")} in ${DAYS} days, ${percent(again, reviews)} of them “again”.`;
  $("#history-summary").textContent = summary;
  $("#history-chart").replaceChildren(
    barChart(days, {
      value: (day) => day.reviews,
      part: (day) => day.again,
      describe: (day) =>
        `${shortDate(day.date)}: ${plural(day.reviews, "review")}, ${day.again} again ` +
        `(${percent(day.again, day.reviews)})`,
      label: `Reviews per day: ${summary}`,
    }),
  );
}

function showByState(byState) {
  $("#stats-state").replaceChildren(
    ...Object.entries(STATE_LABELS).map(([key, label]) => pair(label, String(byState[key] ?? 0))),
  );
}

function showByDifficulty(byDifficulty) {
  $("#stats-difficulty").replaceChildren(
    ...["1", "2", "3", "4", "5"].map((d) => pair(`Difficulty ${d}`, String(byDifficulty[d] ?? 0))),
  );
}

/** One figure: <div class="stat"><dt>term</dt><dd>value, note</dd></div>. */
function pair(term, value, note = null) {
  return h(
    "div",
    { class: "stat" },
    h("dt", {}, term),
    h(
      "dd",
      {},
      h("span", { class: "value" }, value),
      note ? h("span", { class: "note" }, note) : null,
    ),
  );
}
