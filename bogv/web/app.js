// bogv's page: search, add, browse and resolve duplicates through the JSON API. Plain JavaScript, no build step.
// Everything a client chose (keys, paths) is rendered with textContent, never as markup.

const API = "api/image/sim";
const TOKEN_KEY = "bogv.token";
const PAGE = 24;
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  // enveloped: the service's own answer, not a proxy's page in its place
  constructor(message, code, enveloped = true) {
    super(message);
    this.code = code;
    this.enveloped = enveloped;
  }
}

// --- the API, with the token asked for once when the service answers 401 ---------------

let token = sessionStorage.getItem(TOKEN_KEY) || "";
let asking = null; // one prompt shared by every request that met a 401

function askToken(why) {
  if (!asking) {
    asking = new Promise((resolve) => {
      const dialog = $("token-dialog");
      $("token-why").textContent = why;
      $("token-input").value = "";
      dialog.returnValue = "";
      dialog.addEventListener("close", () => {
        asking = null;
        const given = $("token-input").value.trim();
        if (dialog.returnValue === "ok" && given) {
          token = given;
          sessionStorage.setItem(TOKEN_KEY, token);
          $("forget-token").hidden = false;
          resolve(true);
        } else {
          resolve(false);
        }
      }, { once: true });
      dialog.showModal();
    });
  }
  return asking;
}

async function request(path, { method = "GET", json, form } = {}) {
  for (;;) {
    const headers = token ? { token } : {};
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form) {
      body = form;
    }
    const sent = token;
    const resp = await fetch(`${API}${path}`, { method, headers, body });
    if (resp.status !== 401) return resp;
    if (token !== sent) continue; // another request already got a new token
    const why = sent ? "The token was not accepted. Try again." :
      "This service needs a token. It is kept for this browser tab only.";
    if (!(await askToken(why))) throw new ApiError("a token is needed", 401);
  }
}

async function call(path, options) {
  const resp = await request(path, options);
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError(`HTTP ${resp.status}`, resp.status, false);
  }
  if (body.code !== 200) throw new ApiError(body.msg, body.code);
  return { data: body.data, resp };
}

function say(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle("error", isError);
}

const describe = (err) => (err instanceof ApiError ? `${err.message} (${err.code})` : String(err));

// --- header ----------------------------------------------------------------------------

async function refreshStats() {
  try {
    const { data } = await call("/stats");
    const n = data.count;
    say($("stats"), `${n.toLocaleString()} image${n === 1 ? "" : "s"} · ${data.model} · ` +
      `${data.store} (${data.collection})`);
  } catch (err) {
    say($("stats"), `service unavailable: ${describe(err)}`, true);
  }
}

$("forget-token").hidden = !token;
$("forget-token").addEventListener("click", () => {
  token = "";
  sessionStorage.removeItem(TOKEN_KEY);
  $("forget-token").hidden = true;
});

// --- tabs (arrow keys move between them, as in the ARIA tabs pattern) -----------------

const tabs = [...document.querySelectorAll('[role="tab"]')];

function showTab(tab, focus = false) {
  for (const t of tabs) {
    const selected = t === tab;
    t.setAttribute("aria-selected", String(selected));
    t.tabIndex = selected ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
  if (tab.id === "tab-browse" && !browse.loaded) loadRecords(true);
  if (tab.id === "tab-duplicates" && !dups.loaded) scanAndLoad();
  history.replaceState(null, "", `#${tab.id.slice(4)}`);
}

for (const tab of tabs) {
  tab.addEventListener("click", () => showTab(tab));
  tab.addEventListener("keydown", (e) => {
    const i = tabs.indexOf(tab);
    const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: tabs.length - 1 }[e.key];
    if (next === undefined) return;
    e.preventDefault();
    showTab(tabs[(next + tabs.length) % tabs.length], true);
  });
}

// --- thumbnails: fetched with the token, at most four at a time; cards gone are skipped --

const thumbQueue = [];
let thumbsLoading = 0;

function loadThumb(img, id) {
  thumbQueue.push([img, id]);
  queueMicrotask(pumpThumbs); // after the caller has put the card in the page
}

function pumpThumbs() {
  while (thumbsLoading < 4 && thumbQueue.length) {
    const [img, id] = thumbQueue.shift();
    if (!img.isConnected) continue;
    thumbsLoading += 1;
    request(`/thumb/${id}`)
      .then(async (resp) => {
        if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
        img.src = URL.createObjectURL(await resp.blob());
        img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
      })
      .catch(() => img.closest(".card")?.classList.add("no-thumb"))
      .finally(() => {
        thumbsLoading -= 1;
        pumpThumbs();
      });
  }
}

// --- cards: one record, with its delete buttons ------------------------------------------

function field(dl, name, value) {
  const dt = document.createElement("dt");
  const dd = document.createElement("dd");
  dt.textContent = name;
  dd.textContent = value;
  dd.title = value;
  dl.append(dt, dd);
}

function shortDate(d) {
  const two = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
    `${two(d.getHours())}:${two(d.getMinutes())}`;
}

function button(label, aria, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "quiet";
  b.textContent = label;
  b.setAttribute("aria-label", aria);
  b.addEventListener("click", onClick);
  return b;
}

function card(record, { hit = false, group = null } = {}) {
  const li = document.createElement("li");
  li.className = record.suggested ? "card keep" : "card";
  li.dataset.id = record.id;
  li.dataset.key = record.key;
  const img = document.createElement("img");
  img.alt = `Thumbnail of ${record.filepath || record.key}`;
  img.width = 256;
  img.height = 192;
  li.append(img);
  const meta = document.createElement("div");
  meta.className = "meta";
  if (hit) {
    const line = document.createElement("p");
    line.className = "score-line";
    const label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = "score ";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = record.score.toFixed(3);
    score.title = "similarity score, 1 = the same picture";
    line.append(label, score);
    if (record.suggested) {
      const keep = document.createElement("span");
      keep.className = "keep-badge";
      keep.textContent = "keep";
      keep.title = "the image to keep in this group";
      line.append(keep);
    } else if (record.match) {
      const match = document.createElement("span");
      match.className = `match match-${String(record.match).replace(/[^a-z0-9]+/gi, "-")}`;
      match.textContent = String(record.match).replace(/_/g, " ");
      line.append(match);
    }
    meta.append(line);
  }
  const dl = document.createElement("dl");
  field(dl, "key", record.key);
  field(dl, "path", record.filepath || "—");
  field(dl, "id", String(record.id));
  if (record.added) field(dl, "added", shortDate(new Date(record.added)));
  if (record.width) field(dl, "size", `${record.width}×${record.height}`);
  meta.append(dl);
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.append(button("Similar", `Images similar to record ${record.id}`,
    () => similar(record)));
  if (group) {
    actions.append(button("Keep only this", `Keep record ${record.id}, delete the other ` +
      "images of its group", () => keepOnly(record, group)));
  }
  for (const [label, kind] of [["Delete", "id"], ["Delete key", "key"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "quiet";
    button.textContent = label;
    button.setAttribute("aria-label", kind === "id" ? `Delete record ${record.id}` :
      `Delete every record with key ${record.key}`);
    button.addEventListener("click", () => remove(kind, record));
    actions.append(button);
  }
  meta.append(actions);
  li.append(meta);
  loadThumb(img, record.id);
  return li;
}

function confirmDialog(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
  });
}

async function remove(kind, record) {
  const question = kind === "id" ?
    `Delete record ${record.id} (key “${record.key}”)? This cannot be undone.` :
    `Delete every record with key “${record.key}”? This cannot be undone.`;
  if (!(await confirmDialog(question))) return;
  try {
    const { data } = await call(kind === "id" ? "/del/id" : "/del/key", {
      method: "POST", json: kind === "id" ? { id: String(record.id) } : { key: record.key },
    });
    const selector = kind === "id" ? `.card[data-id="${record.id}"]` :
      `.card[data-key="${CSS.escape(record.key)}"]`;
    for (const el of document.querySelectorAll(selector)) el.remove();
    announce(`Deleted ${data} record${data === 1 ? "" : "s"}.`);
    refreshStats();
  } catch (err) {
    announce(`Delete failed: ${describe(err)}`, true);
  }
}

function announce(text, isError = false) {
  const panel = tabs.find((t) => t.getAttribute("aria-selected") === "true").id.slice(4);
  say($(`${panel}-status`), text, isError);
}

// --- search ----------------------------------------------------------------------------

let lastQuery = null; // a File/Blob or {url}; re-run when the limit or minimum score change

function searchOptions() {
  const limit = Math.min(Math.max(parseInt($("limit").value, 10) || 12, 1), 1000);
  return { limit, min_score: Number($("min-score").value) };
}

async function search(query) {
  lastQuery = query;
  const { limit, min_score } = searchOptions();
  const status = $("search-status");
  say(status, "Searching…");
  const started = performance.now();
  try {
    let result;
    if (query.id !== undefined) {
      result = await call("/search/id", { method: "POST", json: { id: query.id, limit, min_score } });
    } else if (query instanceof Blob) {
      const form = new FormData();
      form.append("file", query, query.name || "pasted-image");
      form.append("limit", String(limit));
      form.append("min_score", String(min_score));
      result = await call("/search/file", { method: "POST", form });
    } else {
      result = await call("/search/url", { method: "POST", json: { ...query, limit, min_score } });
    }
    const hits = result.data;
    const ms = Math.round(performance.now() - started);
    $("results").replaceChildren(...hits.map((h) => card(h, { hit: true })));
    say(status, hits.length ? `${hits.length} result${hits.length === 1 ? "" : "s"} in ${ms} ms` :
      "No stored image scores above the minimum.");
  } catch (err) {
    $("results").replaceChildren();
    say(status, `Search failed: ${describe(err)}`, true);
  }
}

// "More like this": the stored record's own vector and keypoints are the query.
function similar(record) {
  const preview = $("query-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.removeAttribute("src");
  preview.alt = `Query: record ${record.id}`;
  preview.hidden = false;
  loadThumb(preview, record.id);
  showTab($("tab-search"));
  search({ id: record.id });
}

function searchFile(file) {
  const preview = $("query-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.alt = `Query: ${file.name || "pasted image"}`;
  preview.hidden = false;
  showTab($("tab-search"));
  search(file);
}

$("search-file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = ""; // choosing the same file again must search again
  if (file) searchFile(file);
});

$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const url = $("search-url").value.trim();
  if (!url) {
    say($("search-status"), "Give an image URL, or drop, paste or choose an image.", true);
    return;
  }
  $("query-preview").hidden = true;
  search({ url });
});

let rerun = 0;
function rerunSoon() {
  $("min-score-value").textContent = Number($("min-score").value).toFixed(2);
  clearTimeout(rerun);
  if (lastQuery) rerun = setTimeout(() => search(lastQuery), 250);
}
$("min-score").addEventListener("input", rerunSoon);
$("limit").addEventListener("change", rerunSoon);

document.addEventListener("paste", (e) => {
  const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (!file) return; // text pastes into inputs behave as usual
  e.preventDefault();
  searchFile(file);
});

function dropZone(zone, onFiles) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = [...e.dataTransfer.files].filter((f) => f.type.startsWith("image/") || !f.type);
    if (files.length) onFiles(files);
  });
}
// A drop that misses a zone must not navigate away from the page.
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", (e) => e.preventDefault());
dropZone($("search-drop"), (files) => searchFile(files[0]));

// --- add -------------------------------------------------------------------------------

let chosen = [];

function choose(files) {
  chosen = files;
  const names = files.map((f) => f.name).join(", ");
  $("add-chosen").textContent = files.length ?
    `${files.length} file${files.length === 1 ? "" : "s"}: ${names}` :
    "Drop images here or choose files";
  $("add-submit").disabled = !files.length;
  $("add-path").disabled = files.length > 1;
}

$("add-files").addEventListener("change", (e) => {
  choose([...e.target.files]);
  e.target.value = "";
});
dropZone($("add-drop"), choose);

async function addOne(file, key, path, li) {
  const form = new FormData();
  form.append("file", file, file.name);
  if (key) form.append("key", key);
  if (path) form.append("imgPath", path);
  try {
    const { resp } = await call("/add/file", { method: "POST", form });
    const id = resp.headers.get("X-Bogv-Id");
    const created = resp.headers.get("X-Bogv-Created") !== "false";
    li.dataset.outcome = created ? "added" : "skipped";
    li.lastChild.textContent = created ? `added (id ${id})` : `already indexed (id ${id})`;
    return li.dataset.outcome;
  } catch (err) {
    li.dataset.outcome = "failed";
    li.lastChild.textContent = `failed: ${describe(err)}`;
    return "failed";
  }
}

$("add-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const files = chosen;
  if (!files.length) return;
  const key = $("add-key").value.trim();
  const path = files.length === 1 ? $("add-path").value.trim() : "";
  const progress = $("add-progress");
  progress.hidden = false;
  progress.max = files.length;
  progress.value = 0;
  $("add-submit").disabled = true;
  say($("add-status"), `Adding ${files.length} file${files.length === 1 ? "" : "s"}…`);
  const rows = files.map((file) => {
    const li = document.createElement("li");
    const name = document.createElement("span");
    const outcome = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    outcome.className = "outcome";
    outcome.textContent = "waiting";
    li.append(name, outcome);
    return li;
  });
  $("add-results").replaceChildren(...rows);
  const counts = { added: 0, skipped: 0, failed: 0 };
  let next = 0;
  async function worker() {
    while (next < files.length) {
      const i = next++;
      rows[i].lastChild.textContent = "uploading…";
      counts[await addOne(files[i], key, path, rows[i])] += 1;
      progress.value += 1;
    }
  }
  await Promise.all([worker(), worker()]);
  say($("add-status"), `${counts.added} added, ${counts.skipped} already indexed, ` +
    `${counts.failed} failed.`, counts.failed > 0);
  $("add-submit").disabled = false;
  browse.loaded = false; // the browse tab shows the new records when opened
  refreshStats();
});

// --- browse ----------------------------------------------------------------------------

const browse = { loaded: false, next: null, key: "" };

async function loadRecords(fresh) {
  const status = $("browse-status");
  if (fresh) {
    browse.next = null;
    browse.key = $("browse-key").value.trim();
    $("records").replaceChildren();
  }
  browse.loaded = true;
  const params = new URLSearchParams({ limit: String(PAGE) });
  if (browse.next !== null) params.set("before", String(browse.next));
  if (browse.key) params.set("key", browse.key);
  say(status, "Loading…");
  try {
    const { data } = await call(`/records?${params}`);
    $("records").append(...data.records.map((r) => card(r)));
    browse.next = data.next;
    $("more").hidden = data.next === null;
    const shown = $("records").children.length;
    const which = browse.key ? ` with key “${browse.key}”` : "";
    say(status, shown ? `${shown} record${shown === 1 ? "" : "s"}${which}, newest first.` :
      browse.key ? `No record has key “${browse.key}”.` : "Nothing indexed yet.");
  } catch (err) {
    browse.loaded = false;
    say(status, `Could not list records: ${describe(err)}`, true);
  }
}

$("browse-form").addEventListener("submit", (e) => {
  e.preventDefault();
  loadRecords(true);
});
$("more").addEventListener("click", () => loadRecords(false));


// --- duplicates: groups of copies, the image to keep first --------------------------------

const dups = { loaded: false, next: 0, version: "" };
// most ids one POST /duplicates/keep of "Keep all suggested" deletes, as `bogv duplicates
// --delete-copies` deletes them
const DELETE_BATCH = 1000;

function minScore() {
  return Number($("dups-min").value);
}

async function scanAndLoad() {
  dups.loaded = true;
  const status = $("duplicates-status");
  say(status, "Checking new images for copies…");
  $("dups-scan").disabled = true;
  const settled = followProgress(status);
  try {
    let checked = "";
    try {
      const { data } = await call("/duplicates/scan", { method: "POST" });
      const n = data.scanned;
      if (n) checked = `Checked ${n} new image${n === 1 ? "" : "s"}. `;
    } catch (err) {
      if (!(await scanGoesOn(err))) throw err;
    }
    await loadGroups(true, checked, settled);
  } catch (err) {
    dups.loaded = false;
    say(status, `Could not scan: ${describe(err)}`, true);
  } finally {
    settled(); // at once after the catch: no poll's answer can come between
    $("dups-scan").disabled = false;
  }
}

// A scan this tab did not start (another tab's, or one from before a reload: 409), or this
// tab's own cut off by a proxy's timeout (an answer that is no envelope, or none) while the
// service goes on with it: wait for it to end, as followProgress shows. False for any other
// error, which the tab shows.
async function scanGoesOn(err) {
  const cut = !(err instanceof ApiError) || !err.enveloped;
  if (!cut && err.code !== 409) return false;
  for (;;) {
    const { data } = await call("/duplicates/progress");
    if (!data.scanning && !data.elsewhere) return true;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// The first scan of a large collection takes minutes (about twenty at 100k images), and
// making its groups a few more: say how far it is until the answer comes. Returns what
// stops it, called before the answer is shown.
function followProgress(status) {
  const bar = $("dups-progress");
  let stopped = false;
  let timer;
  const poll = async () => {
    try {
      const { data } = await call("/duplicates/progress");
      const here = data.scanning || data.grouping;
      const stage = here || data.scanning_elsewhere;
      const what = data.scanning ? "Checking new images for copies" :
        here ? "Making groups" : "Another replica is checking new images for copies";
      if (!stopped && data.elsewhere && !stage) say(status, `${what}…`);
      if (!stopped && stage && stage.total) {
        say(status, `${what}: ${stage.done} of ${stage.total} images${timeLeft(stage)}…`);
        bar.max = stage.total;
        bar.value = stage.done;
        bar.hidden = false;
      }
    } catch {
      // the scan's own answer says what went wrong
    }
    if (!stopped) timer = setTimeout(poll, 1000);
  };
  timer = setTimeout(poll, 500);
  return () => {
    stopped = true;
    clearTimeout(timer);
    bar.hidden = true;
  };
}

function timeLeft({ done, total, seconds }) {
  if (!done || seconds < 2) return "";
  const left = ((total - done) * seconds) / done;
  return left >= 90 ? `, about ${Math.round(left / 60)} min left` :
    `, about ${Math.max(1, Math.round(left))} s left`;
}

async function loadGroups(fresh, prefix = "", settled = () => {}) {
  const status = $("duplicates-status");
  if (fresh) {
    dups.next = 0;
    $("groups").replaceChildren();
  }
  const params = new URLSearchParams({ offset: String(dups.next), limit: "10",
    min_score: String(minScore()) });
  try {
    const { data } = await call(`/duplicates?${params}`);
    settled();
    const shown = $("groups").children.length;
    // the oldest listing shown: /duplicates/keep checks more once a scan or a dismissal
    // changed it
    if (!shown) dups.version = data.version;
    $("groups").append(...data.groups.map((g, i) => groupItem(g, shown + i + 1)));
    dups.next = data.next;
    $("dups-more").hidden = data.next === null;
    $("dups-keep-all").hidden = !data.total;
    const pending = data.pending ? ` ${data.pending} image${data.pending === 1 ? "" : "s"} ` +
      "not checked yet." : "";
    say(status, prefix + (data.total ?
      `${data.total} group${data.total === 1 ? "" : "s"} of copies.` :
      "No copies found.") + pending);
  } catch (err) {
    settled();
    say(status, `Could not list duplicates: ${describe(err)}`, true);
  }
}

function groupItem(group, n) {
  const li = document.createElement("li");
  li.className = "group";
  li.dataset.ids = group.members.map((m) => m.id).join(",");
  const head = document.createElement("div");
  head.className = "group-head";
  const title = document.createElement("h2");
  title.textContent = `Group ${n}: ${group.members.length} images`;
  const why = document.createElement("span");
  why.className = "why";
  why.textContent = `Keep ${group.suggested}: ${group.why}`;
  head.append(title, why, button("Not duplicates", `Group ${n} is not duplicates`,
    () => dismiss(li)));
  const cards = document.createElement("ul");
  cards.className = "grid";
  cards.setAttribute("aria-label", `Images of group ${n}, the one to keep first`);
  cards.append(...group.members.map((m) => card(m, { hit: true, group: li })));
  li.append(head, cards);
  return li;
}

async function dismiss(groupLi) {
  const ids = [...groupLi.querySelectorAll(".card")].map((c) => Number(c.dataset.id));
  try {
    await call("/duplicates/dismiss", { method: "POST", json: { ids } });
    groupLi.remove();
    announce(`Marked ${ids.length} images as not duplicates; they will not be proposed again.`);
  } catch (err) {
    announce(`Could not dismiss: ${describe(err)}`, true);
  }
}

async function keepOnly(record, groupLi) {
  const others = [...groupLi.querySelectorAll(".card")].map((c) => c.dataset.id)
    .filter((id) => id !== String(record.id));
  if (!others.length) return;
  if (!(await confirmDialog(`Keep record ${record.id} and delete the ${others.length} other ` +
    `image${others.length === 1 ? "" : "s"} of this group? This cannot be undone.`))) return;
  try {
    const { data } = await call("/duplicates/keep", { method: "POST", json: {
      groups: [{ keep: record.id, delete: others.map(Number) }], version: dups.version } });
    const gone = new Set(others.filter((id) => !data.left.includes(Number(id))));
    for (const id of gone) {
      for (const el of document.querySelectorAll(`.card[data-id="${id}"]`)) el.remove();
    }
    const n = data.deleted;
    const records = `${n} record${n === 1 ? "" : "s"}`;
    if (data.left.length) {
      await loadGroups(true, `Deleted ${records}. ${notDeleted(data.left.length)} `);
    } else {
      groupLi.remove();
      announce(`Kept record ${record.id}; deleted ${records}.`);
    }
    refreshStats();
  } catch (err) {
    announce(`Delete failed: ${describe(err)}`, true);
  }
}

// Images the server left: someone changed the groups since they were listed (deleted the
// image to keep, or called them not duplicates).
function notDeleted(n) {
  return `${n} image${n === 1 ? " was" : "s were"} not deleted: the groups changed since ` +
    "they were listed.";
}

// What "Keep only this" does for the suggested image of every group (at the minimum score
// shown), for a collection where no one clicks through 4,000 groups: every group's members
// listed, one question, then keeps of about DELETE_BATCH ids, the bar following them.
async function keepAllSuggested() {
  const button = $("dups-keep-all");
  button.disabled = true; // a second click would list and ask again while the first deletes
  try {
    await deleteAllButSuggested();
  } finally {
    button.disabled = false;
  }
}

async function deleteAllButSuggested() {
  const status = $("duplicates-status");
  const choices = []; // per group (a larger one in parts): { keep, delete }
  let groups = 0;
  let others = 0;
  let version = null; // the first page's: /duplicates/keep checks more if it changed
  try {
    for (let offset = 0; offset !== null;) {
      const params = new URLSearchParams({ offset: String(offset), limit: "500",
        min_score: String(minScore()) });
      const { data } = await call(`/duplicates?${params}`);
      version ??= data.version;
      for (const g of data.groups) {
        const doomed = g.members.filter((m) => !m.suggested).map((m) => m.id);
        for (let j = 0; j < doomed.length; j += DELETE_BATCH) {
          choices.push({ keep: g.suggested, delete: doomed.slice(j, j + DELETE_BATCH) });
        }
        groups += 1;
        others += doomed.length;
      }
      offset = data.next;
    }
  } catch (err) {
    say(status, `Could not list duplicates: ${describe(err)}`, true);
    return;
  }
  if (!others) {
    await loadGroups(true);
    return;
  }
  const which = groups === 1 ? "the group" : `each of the ${groups} groups`;
  if (!(await confirmDialog(`Keep the suggested image of ${which} and delete the ` +
    `${others} other image${others === 1 ? "" : "s"}? This cannot be undone.`))) {
    return;
  }
  const bar = $("dups-progress");
  bar.max = others;
  bar.value = 0;
  bar.hidden = false;
  let deleted = 0;
  let left = 0;
  try {
    // whole groups (or parts), up to DELETE_BATCH images to delete per request
    for (let i = 0; i < choices.length;) {
      const batch = [];
      let size = 0;
      while (i < choices.length && (!batch.length ||
        size + choices[i].delete.length <= DELETE_BATCH)) {
        size += choices[i].delete.length;
        batch.push(choices[i++]);
      }
      const { data } = await call("/duplicates/keep", { method: "POST",
        json: { groups: batch, version } });
      deleted += data.deleted;
      left += data.left.length;
      bar.value += size;
      say(status, `Deleting: ${bar.value} of ${others} images…`);
    }
    await loadGroups(true, `Kept the suggested image of ${groups} ` +
      `group${groups === 1 ? "" : "s"}; deleted ${deleted} record${deleted === 1 ? "" : "s"}. ` +
      (left ? `${notDeleted(left)} ` : ""));
  } catch (err) {
    say(status, `Deleted ${deleted} records, then failed: ${describe(err)}`, true);
  } finally {
    bar.hidden = true;
    refreshStats();
  }
}

$("dups-scan").addEventListener("click", scanAndLoad);
$("dups-keep-all").addEventListener("click", keepAllSuggested);
$("dups-more").addEventListener("click", () => loadGroups(false));
let regroup = 0;
$("dups-min").addEventListener("input", () => {
  $("dups-min-value").textContent = minScore().toFixed(2);
  clearTimeout(regroup);
  regroup = setTimeout(() => loadGroups(true), 250);
});

// --- start -----------------------------------------------------------------------------

const initial = tabs.find((t) => `#${t.id.slice(4)}` === location.hash) || tabs[0];
showTab(initial);
refreshStats();
