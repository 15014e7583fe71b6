// Import & export (the "transfer" view, #transfer): import an Anki package, a CSV/TSV file or an
// Anki plain-text export as a background job with a progress bar, listing what was created,
// skipped and refused (by line or by note); download every word as CSV.
import * as api from "./api.js";
import { $, busy, clearFormError, failed, formError, h, missingRequired, say, warn } from "./ui.js";

export const views = [
  { name: "transfer", title: "Import & export", enter: hideResult, reset: hideResult },
];

export function wire() {
  $("#import-form").addEventListener("submit", onImport);
  $("#export").addEventListener("click", onExport);
}

function hideResult() {
  $("#import-result").hidden = true;
  hideProgress();
}

// --- Import -----------------------------------------------------------------------------
// Every file goes to POST /imports, which answers at once with a job; the page follows it
// with GET /imports/{id} (a progress bar) until it is done or failed.

/** How often a running import is asked how far it is. */
const POLL_MS = 400;

async function onImport(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  hideResult();
  if (missingRequired(form)) {
    return formError(form, { message: "Choose a file to import.", fields: { file: 1 } });
  }
  const file = form.elements.file.files[0];
  const data = new FormData();
  data.append("file", file);
  await busy($("button[type=submit]", form), async () => {
    try {
      let job = await api.requestJson("/imports", {
        method: "POST",
        body: data,
        idempotencyKey: api.newIdempotencyKey(), // its automatic retries start one job
      });
      showProgress(job);
      while (job.status === "queued" || job.status === "running") {
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        job = await api.requestJson(`/imports/${job.id}`);
        showProgress(job);
      }
      hideProgress();
      if (job.status === "failed") {
        return formError(form, { message: job.error });
      }
      showResult(job.result);
      form.reset();
    } catch (error) {
      hideProgress();
      formError(form, error);
    }
  });
}

function showProgress(job) {
  const { done, total } = job.progress;
  const bar = $("#import-progress-bar");
  if (total > 0) {
    bar.max = total;
    bar.value = done;
  } else {
    bar.removeAttribute("value"); // indeterminate while the file is read
  }
  $("#import-progress-label").textContent =
    total > 0
      ? `Importing ${job.filename}: ${done} of ${total}…`
      : `Importing ${job.filename}: reading the file…`;
  $("#import-progress").hidden = false;
}

function hideProgress() {
  $("#import-progress").hidden = true;
}

/** What an import's problem names: a note of an Anki package, or a line of a CSV/TSV file. */
function unitOf(problem) {
  return problem.note === undefined ? "line" : "note";
}

function capitalized(text) {
  return text[0].toUpperCase() + text.slice(1);
}

function showResult(result) {
  const words = (n) => `${n} word${n === 1 ? "" : "s"}`;
  const reviews = result.reviews_imported;
  const problems = result.errors.length;
  $("#import-counts").textContent =
    `Created ${words(result.created)}. Skipped ${result.skipped} you already have.` +
    (reviews ? ` Imported ${reviews} review${reviews === 1 ? "" : "s"}.` : "") +
    (problems ? ` ${problems} ${unitOf(result.errors[0])}(s) could not be imported:` : "");
  $("#import-errors").replaceChildren(
    ...result.errors.map((problem) =>
      h(
        "li",
        {},
        h("strong", {}, `${capitalized(unitOf(problem))} ${problem.note ?? problem.line}: `),
        problem.detail,
      ),
    ),
  );
  $("#import-result").hidden = false;
  $("#import-result-title").focus();
  say(`Import finished: created ${result.created}, skipped ${result.skipped}.`);
}

// --- Export -----------------------------------------------------------------------------

async function onExport(event) {
  warn("");
  await busy(event.currentTarget, async () => {
    try {
      // fetch, not a plain link: the download needs the Authorization header.
      const response = await api.request("/words/export", { headers: { Accept: "text/csv" } });
      const name = downloadName(response);
      save(await response.blob(), name);
      say(`Your words are downloading as ${name}.`);
    } catch (error) {
      failed(error);
    }
  });
}

function downloadName(response) {
  const header = response.headers.get("Content-Disposition") ?? "";
  const match = /filename="?([^";]+)"?/i.exec(header);
  return match ? match[1] : "vocab-words.csv";
}

/** Hand a blob to the browser as a download named `name`. */
function save(blob, name) {
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
