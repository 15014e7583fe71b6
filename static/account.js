// Account: the signed-out views (sign-in and registration, one submit path for both forms),
// resuming the tab's session after a reload, the header's Sign out button, and the return to
// sign-in when a session can no longer be renewed. (Study settings are in settings.js.)
import * as api from "./api.js";
import { currentUser, enterSession, leaveSession, route, showPublicView } from "./router.js";
import {
  $,
  busy,
  clearFormError,
  clearMessages,
  failed,
  formError,
  missingRequired,
  say,
  warn,
} from "./ui.js";

export const views = [
  { name: "signin", title: "Sign in", public: true },
  { name: "register", title: "Create an account", public: true },
];

/** What differs between the two forms: the email field's name, what is sent, the greeting. */
const SIGN_IN = {
  emailField: "username", // the OAuth2 password form's name for it
  send: (email, password) => api.signIn(email, password),
  greeting: (user) => `Signed in as ${user.email}.`,
};
const REGISTER = {
  emailField: "email",
  async send(email, password) {
    await api.register(email, password);
    await api.signIn(email, password);
  },
  greeting: (user) => `Welcome! Your account ${user.email} is ready. Add your first word.`,
};

export function wire() {
  $("#signin-form").addEventListener("submit", (event) => submit(event, SIGN_IN));
  $("#register-form").addEventListener("submit", (event) => submit(event, REGISTER));
  $("#show-register").addEventListener("click", () => switchTo("register"));
  $("#show-signin").addEventListener("click", () => switchTo("signin"));
  $("#sign-out").addEventListener("click", () => signOut().catch(failed));
  api.setSessionEndHandler(sessionEnded);
}

/** On page load: carry on with the tab's session if it can be renewed, else show sign-in. */
export async function resume() {
  if (api.hasStoredSession() && (await resumed())) return;
  await route({ focus: false });
}

async function resumed() {
  try {
    if (await api.renew()) {
      await startSession();
      return true;
    }
    warn("Your session has expired. Please sign in again.");
  } catch (error) {
    warn(error.message);
  }
  return false;
}

/** Both forms: check the fields, send, start the session, greet. */
async function submit(event, flow) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormError(form);
  warn("");
  const missing = missingRequired(form);
  if (missing) return formError(form, missing);
  const email = form.elements[flow.emailField].value.trim();
  const password = form.elements.password.value;
  await busy($("button[type=submit]", form), async () => {
    try {
      await flow.send(email, password);
      form.reset(); // the password is not kept anywhere
      await startSession();
      say(flow.greeting(currentUser()));
    } catch (error) {
      formError(form, error);
    }
  });
}

async function startSession() {
  await enterSession(await api.requestJson("/users/me"));
}

function switchTo(name) {
  clearMessages();
  showPublicView(name);
}

async function signOut() {
  await api.signOut();
  await leaveSession();
  say("You are signed out.");
}

/** The API could not renew the session: back to sign-in, saying why. */
function sessionEnded(message) {
  if (!currentUser()) return; // already showing sign-in
  leaveSession();
  warn(message);
}
