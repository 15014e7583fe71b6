// The study page's entry module: sign in, keep a word list, study due cards, see stats, import
// and export, change study settings. Plain DOM and ES modules, no framework and no build step;
// each view is a module (its views, its own load/render/wire functions) that this file wires
// to the router:
//   account.js   sign-in and registration, the session, Sign out
//   words.js     the word list and the add, edit and delete dialogs
//   study.js     the due cards, by keyboard or buttons
//   stats.js     the figures of GET /stats
//   transfer.js  import and export
//   settings.js  study settings and "Optimize my schedule"
// beside api.js (the API client), router.js (which view shows) and ui.js (shared helpers).
import * as account from "./account.js";
import { addView, startRouter } from "./router.js";
import * as settings from "./settings.js";
import * as stats from "./stats.js";
import * as study from "./study.js";
import * as transfer from "./transfer.js";
import { wireDialogs } from "./ui.js";
import * as words from "./words.js";

const VIEW_MODULES = [account, words, study, stats, transfer, settings];

for (const module of VIEW_MODULES) {
  module.wire();
  for (const view of module.views) addView(view);
}
wireDialogs();
startRouter({ home: "words" });
account.resume();
