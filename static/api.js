// The API client: same-origin fetch, the session's tokens, and readable error messages.
//
// Where the tokens live (a deliberate choice):
// - The access token is kept in this module's memory only. It never touches storage, so it is
//   gone on reload and unreadable to anything but this page's code.
// - The refresh token is kept in sessionStorage, so a reload (or a crash of the page) does not
//   sign the learner out, while closing the tab ends the session. localStorage would keep a
//   long-lived credential on disk across browser restarts and share it between tabs, which
//   would then race to spend the same single-use token (the API treats a reused refresh token
//   as theft and ends the login). A page script can still read sessionStorage, so the page
//   builds its DOM with textContent only and loads no third-party code.
// - The password is sent once, in the sign-in or registration request, and never kept.
//
// Tabs that share one session: a duplicated tab, or one this page opened, starts with a copy
// of sessionStorage, so two tabs hold the same refresh token. When one renews, it tells the
// others on a BroadcastChannel (same origin only) which token replaced the one it spent; a tab
// still holding the spent one takes the new one, so it never renews with a spent token later
// (which would end the login). Two tabs renewing at the same moment both present the same
// token: the API's reuse grace window (REFRESH_REUSE_GRACE_SECONDS) gives each a pair of its
// own in the same login, and they carry on apart.

const REFRESH_KEY = "vocab.refresh_token";

let accessToken = null;
let refreshing = null; // the one refresh in flight, shared by every call that needs it
let onSessionEnd = () => {};

const tabs = typeof BroadcastChannel === "function" ? new BroadcastChannel("vocab.session") : null;
tabs?.addEventListener("message", ({ data }) => {
  const { spent, next } = data ?? {};
  if (typeof spent === "string" && typeof next === "string" && spent === readRefreshToken()) {
    storeRefreshToken(next); // a copy of this session renewed: follow it
  }
});

/** An API failure, with a message meant for people. */
export class ApiError extends Error {
  constructor(status, message, { detail = null, fields = {}, requestId = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
    this.fields = fields; // field name -> message, from a 422
    this.requestId = requestId;
  }
}

/** Called with a message when the session cannot be renewed (the page shows sign-in). */
export function setSessionEndHandler(handler) {
  onSessionEnd = handler;
}

export function hasStoredSession() {
  return readRefreshToken() !== null;
}

function readRefreshToken() {
  try {
    return sessionStorage.getItem(REFRESH_KEY);
  } catch {
    return null; // storage disabled: the session lasts until reload
  }
}

function storeRefreshToken(token) {
  try {
    sessionStorage.setItem(REFRESH_KEY, token);
  } catch {
    // storage disabled: still signed in until the page goes
  }
}

function keepTokens(pair) {
  accessToken = pair.access_token;
  storeRefreshToken(pair.refresh_token);
}

function forgetTokens() {
  accessToken = null;
  try {
    sessionStorage.removeItem(REFRESH_KEY);
  } catch {
    // nothing stored
  }
}

const FIELD_NAMES = {
  email: "Email",
  password: "Password",
  current_password: "Current password",
  username: "Email",
  word: "Word",
  definition: "Definition",
  example: "Example",
  language: "Language",
  difficulty: "Difficulty",
  tags: "Tags",
  file: "File",
  q: "Search",
  rating: "Rating",
};

function fieldMessage(item) {
  const loc = Array.isArray(item.loc) ? item.loc.filter((part) => part !== "body") : [];
  const field = loc.find((part) => typeof part === "string" && part !== "query") ?? "";
  const index = loc.find((part) => typeof part === "number");
  let msg = item.msg || "is not valid";
  if (field === "language" && item.type === "string_pattern_mismatch") {
    msg = "use a code such as en, de or pt-BR";
  } else if (field === "tags" && item.type === "text_character" && /^space /.test(msg)) {
    msg = "a tag cannot contain spaces";
  }
  msg = msg.replace(/^Value error, /, "");
  let label = FIELD_NAMES[field] ?? field;
  if (field === "tags" && index !== undefined) label = `Tag ${index + 1}`;
  return { field, text: label ? `${label}: ${msg}` : msg };
}

function retryAfterText(value) {
  if (!value) return "Please wait a little and try again.";
  let seconds = Number(value);
  if (!Number.isFinite(seconds)) {
    const when = Date.parse(value);
    seconds = Number.isNaN(when) ? 60 : Math.max(0, Math.round((when - Date.now()) / 1000));
  }
  if (seconds <= 90) {
    return `Try again in ${seconds} second${seconds === 1 ? "" : "s"}.`;
  }
  const minutes = Math.ceil(seconds / 60);
  return `Try again in ${minutes} minutes.`;
}

async function errorFrom(response) {
  const requestId = response.headers.get("X-Request-ID");
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page, say)
  }
  const detail = body?.detail ?? null;
  const status = response.status;
  if (status === 422 && Array.isArray(detail)) {
    const fields = {};
    const lines = detail.map((item) => {
      const { field, text } = fieldMessage(item);
      if (field && !fields[field]) fields[field] = text;
      return text;
    });
    return new ApiError(status, lines.join(" "), { detail, fields, requestId });
  }
  const text = typeof detail === "string" ? detail : "";
  let message;
  if (status === 429) {
    message = `Too many attempts. ${retryAfterText(response.headers.get("Retry-After"))}`;
  } else if (status === 413) {
    message = text.startsWith("CSV and TSV")
      ? "That is too large for the server (CSV and TSV files can be up to 5 MB)."
      : "That is too large for the server (imports can be up to 5 MB for CSV and TSV, 100 MB for Anki packages).";
  } else if (status >= 500) {
    message = "Something went wrong on the server. Please try again.";
    if (requestId) message += ` (Request id: ${requestId})`;
  } else if (text) {
    message = text.endsWith(".") ? text : `${text}.`;
  } else {
    message = `The request failed (HTTP ${status}).`;
  }
  return new ApiError(status, message, { detail, requestId });
}

async function send(path, { method = "GET", json, form, body, token, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = new URLSearchParams(form);
  } else if (body !== undefined) {
    init.body = body; // FormData: the browser sets the multipart boundary
  }
  if (token) init.headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, "Cannot reach the server. Check your connection and try again.");
  }
}

/** Trade the stored refresh token for a new pair; true when it worked. One at a time. */
export function renew() {
  if (!refreshing) {
    refreshing = (async () => {
      const refreshToken = readRefreshToken();
      if (!refreshToken) return false;
      const response = await send("/auth/refresh", {
        method: "POST",
        json: { refresh_token: refreshToken },
      });
      if (response.status === 401) {
        forgetTokens(); // invalid, expired, spent or revoked: this login is over
        return false;
      }
      if (!response.ok) throw await errorFrom(response); // the server failed; keep the session
      const pair = await response.json();
      keepTokens(pair);
      tabs?.postMessage({ spent: refreshToken, next: pair.refresh_token });
      return true;
    })().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

const SESSION_ENDED = "Your session has expired. Please sign in again.";

function endSession() {
  forgetTokens();
  onSessionEnd(SESSION_ENDED);
  // The screen already says so: callers recognise this error and show nothing more.
  const error = new ApiError(401, SESSION_ENDED);
  error.sessionEnded = true;
  return error;
}

/** Pauses before the automatic retries of a write sent with an idempotency key (ms). */
const RETRY_PAUSES = [500, 1500, 3000];
/** The longest a retry waits for, whatever a Retry-After asks. */
const LONGEST_PAUSE = 5000;

/**
 * A new Idempotency-Key: one per write, reused by every retry of that write, so that a retry
 * after a lost answer is answered with the first one instead of doing the write again.
 */
export function newIdempotencyKey() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  // Outside a secure context (plain HTTP on another host) randomUUID is missing: a version 4
  // UUID from the same random source.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  const parts = [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20)];
  return [...parts, hex.slice(20)].join("-");
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Whether a write sent with a key may simply be sent again: the server was unavailable, or
 * the first copy of it is still running (409 with Retry-After).
 */
function worthRetrying(response) {
  const inFlight = response.status === 409 && response.headers.has("Retry-After");
  return response.status === 503 || inFlight;
}

function pauseBefore(response, attempt) {
  const asked = Number(response?.headers.get("Retry-After"));
  const ms = Number.isFinite(asked) && asked > 0 ? asked * 1000 : RETRY_PAUSES[attempt];
  return Math.min(ms, LONGEST_PAUSE);
}

/** Send with the session's access token, renewing it once on a 401. */
async function sendSignedIn(path, options) {
  if (!accessToken && !(await renew())) throw endSession();
  let response = await send(path, { ...options, token: accessToken });
  if (response.status === 401) {
    if (!(await renew())) throw endSession();
    response = await send(path, { ...options, token: accessToken });
    if (response.status === 401) throw endSession();
  }
  return response;
}

/**
 * Call a protected endpoint. On a 401 the access token is renewed once and the call retried
 * once; when renewing fails the session ends and the page returns to sign-in.
 * With `idempotencyKey` (a write that creates something), the key goes along as
 * Idempotency-Key, and the write is sent again, with the same key, after a network error, a
 * 503 or a 409 that says it is still running, a few times before the error is shown: the
 * server answers a retry of a write it has done with the first answer, so nothing is done twice.
 * Returns the Response (ok); throws ApiError otherwise.
 */
export async function request(path, options = {}) {
  const { idempotencyKey, ...rest } = options;
  if (idempotencyKey) rest.headers = { ...rest.headers, "Idempotency-Key": idempotencyKey };
  for (let attempt = 0; ; attempt += 1) {
    const mayRetry = Boolean(idempotencyKey) && attempt < RETRY_PAUSES.length;
    let response;
    try {
      response = await sendSignedIn(path, rest);
    } catch (error) {
      // Unreachable (status 0), or the session could not be renewed just now (503).
      if (!mayRetry || !(error.status === 0 || error.status === 503)) throw error;
      await pause(RETRY_PAUSES[attempt]);
      continue;
    }
    if (mayRetry && worthRetrying(response)) {
      await pause(pauseBefore(response, attempt));
      continue;
    }
    if (!response.ok) throw await errorFrom(response);
    return response;
  }
}

/** request() and the JSON body (null for 204). */
export async function requestJson(path, options = {}) {
  const response = await request(path, options);
  return response.status === 204 ? null : response.json();
}

export async function signIn(email, password) {
  const response = await send("/auth/token", {
    method: "POST",
    form: { username: email, password },
  });
  if (!response.ok) throw await errorFrom(response);
  keepTokens(await response.json());
}

export async function register(email, password) {
  const response = await send("/auth/register", {
    method: "POST",
    json: { email, password },
  });
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

/** End this login on the server (best effort) and forget the tokens here. */
export async function signOut() {
  const refreshToken = readRefreshToken();
  forgetTokens();
  if (!refreshToken) return;
  try {
    await send("/auth/logout", { method: "POST", json: { refresh_token: refreshToken } });
  } catch {
    // offline: the tokens are forgotten here, and the refresh token expires on its own
  }
}
