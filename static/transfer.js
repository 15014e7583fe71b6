// Import & export (the "transfer" view, #transfer): import a CSV/TSV file or an Anki plain-text
// export, listing what was created, skipped and refused line by line; download every word as CSV.
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
}

// --- Import -----------------------------------------------------------------------------

async function onImport(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  hideResult();
  if (missingRequired(form)) {
    return formError(form, { message: "Choose a file to import.", fields: { file: 1 } });
  }
  const data = new FormData();
  data.append("file", form.elements.file.files[0]);
  await busy($("button[type=submit]", form), async () => {
    try {
      showResult(
        await api.requestJson("/words/import", {
          method: "POST",
          body: data,
          idempotencyKey: api.newIdempotencyKey(), // its automatic retries import it once
        }),
      );
      form.reset();
    } catch (error) {
      formError(form, error);
    }
  });
}

function showResult(result) {
  const words = (n) => `${n} word${n === 1 ? "" : "s"}`;
  $("#import-counts").textContent =
    `Created ${words(result.created)}. Skipped ${result.skipped} you already have.` +
    (result.errors.length ? ` ${result.errors.length} line(s) could not be imported:` : "");
  $("#import-errors").replaceChildren(
    ...result.errors.map((problem) =>
      h("li", {}, h("strong", {}, `Line ${problem.line}: `), problem.detail),
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
