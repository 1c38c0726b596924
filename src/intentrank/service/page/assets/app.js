// The intentrank demo page: an endless feed over /v1/feed, clicks and impressions to /v1/events.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const demoToken = document.querySelector('meta[name="intentrank-demo-token"]').content;
  const state = { session: "", cursor: null, loading: false, done: false, page: 0, shown: new Set(),
                  pending: [], posted: new Set(), events: 0, arm: "" };

  function token() { return demoToken || $("token").value.trim() || sessionStorage.getItem("intentrank-token") || ""; }
  function status(text, error) { const s = $("status"); s.textContent = text; s.classList.toggle("error", !!error); }
  function newSessionId() { return "page-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 8); }

  async function api(path, body, auth) {
    const headers = { "content-type": "application/json" };
    if (auth) headers["Authorization"] = "Bearer " + token();
    const r = await fetch(path, { method: body === undefined ? "GET" : "POST", headers,
                                  body: body === undefined ? undefined : JSON.stringify(body) });
    let data = null;
    try { data = await r.json(); } catch (e) { data = { detail: r.statusText }; }
    if (!r.ok) throw new Error("HTTP " + r.status + ": " + (data && data.detail ? data.detail : r.statusText));
    return data;
  }

  async function postEvents(events) {
    if (!events.length) return null;
    if (!token()) { status("events not posted: enter the bearer token (or run the service with service.demo: true)", true); return null; }
    const ack = await api("/v1/events", { events }, true);
    state.events += ack.acknowledged;
    return ack;
  }

  // items of earlier pages that were not clicked go back as impressions (one event per slate item)
  async function flushImpressions() {
    const evs = state.pending.filter((e) => !state.posted.has(e.slate_id + ":" + e.item_id));
    state.pending = [];
    evs.forEach((e) => state.posted.add(e.slate_id + ":" + e.item_id));
    try { await postEvents(evs.map((e) => ({ slate_id: e.slate_id, item_id: e.item_id, click: false }))); }
    catch (err) { status("impressions: " + err.message, true); }
  }

  function render(slate) {
    const feed = $("feed");
    const mark = document.createElement("li");
    mark.className = "page-mark";
    mark.textContent = "page " + (state.page + 1) + " · slate " + slate.slate_id + " · model v" + slate.model_version + " · " + slate.arm;
    feed.appendChild(mark);
    for (const it of slate.items) {
      const li = document.createElement("li");
      li.className = "item " + it.category;
      li.dataset.itemId = it.item_id;
      li.dataset.slateId = slate.slate_id;
      const title = document.createElement("div");
      title.className = "title";
      title.textContent = it.title;
      const meta = document.createElement("div");
      meta.className = "meta";
      const badge = document.createElement("span");
      badge.className = "badge " + it.category;
      badge.textContent = it.category;
      const cb = document.createElement("span");
      cb.className = "cb";
      cb.textContent = "clickbait " + it.clickbait_score.toFixed(2);
      const sc = document.createElement("span");
      sc.textContent = "score " + it.score.toPrecision(3);
      const ack = document.createElement("span");
      ack.className = "ack";
      meta.append(badge, cb, sc, ack);
      li.append(title, meta);
      li.addEventListener("click", () => onClick(li, slate.slate_id, it.item_id, ack));
      feed.appendChild(li);
      state.pending.push({ slate_id: slate.slate_id, item_id: it.item_id });
    }
  }

  async function onClick(li, slateId, itemId, ack) {
    const key = slateId + ":" + itemId;
    if (state.posted.has(key)) {  // one event per slate item: its impression (or click) went already
      if (!li.dataset.acknowledged) ack.textContent = "already posted as an impression";
      return;
    }
    state.posted.add(key);
    li.classList.add("clicked");
    ack.textContent = "posting click…";
    try {
      const r = await postEvents([{ slate_id: slateId, item_id: itemId, click: true, dwell_s: 30.0 }]);
      if (r) { ack.textContent = "✓ click acknowledged (event " + r.first_event_id + ")"; li.dataset.acknowledged = "1"; }
      else { ack.textContent = "not posted (no token)"; ack.classList.add("error"); state.posted.delete(key); }
    } catch (err) {
      ack.textContent = "✗ " + err.message; ack.classList.add("error");
    }
    status(summary());
  }

  function summary() {
    return "user " + $("user").value + " · arm " + state.arm + " · session " + state.session + " · " +
      state.page + " page(s), " + state.shown.size + " items, " + state.events + " events acknowledged";
  }

  async function loadMore() {
    if (state.loading || state.done) return;
    state.loading = true;
    try {
      await flushImpressions();
      const body = { user_id: Number($("user").value) || 0, session_id: state.session };
      if (state.cursor) body.cursor = state.cursor;
      if (state.arm) body.arm = state.arm;
      const slate = await api("/v1/feed", body, false);
      for (const it of slate.items) {
        if (state.shown.has(it.item_id)) throw new Error("item " + it.item_id + " repeated in the session");
        state.shown.add(it.item_id);
      }
      state.cursor = slate.cursor;
      state.arm = slate.arm;
      $("arm").value = slate.arm;
      render(slate);
      state.page += 1;
      if (!slate.items.length) { state.done = true; $("sentinel").textContent = "the end of the feed"; }
      status(summary());
    } catch (err) {
      status(err.message, true);
      if (/HTTP 409|HTTP 410/.test(err.message)) { state.done = true; $("sentinel").textContent = "session over: press “new session”"; }
    } finally {
      state.loading = false;
    }
    // keep filling while the sentinel is still on screen (tall windows)
    const box = $("sentinel").getBoundingClientRect();
    if (!state.done && box.top < window.innerHeight) setTimeout(loadMore, 0);
  }

  async function restart(useSelected) {
    await flushImpressions();
    Object.assign(state, { session: newSessionId(), cursor: null, done: false, page: 0, shown: new Set(), pending: [] });
    state.arm = useSelected === false ? "" : $("arm").value;
    $("feed").replaceChildren();
    $("sentinel").textContent = "scroll for more…";
    await loadMore();
  }

  async function init() {
    if (!demoToken) {
      $("token-box").hidden = false;
      $("token").value = sessionStorage.getItem("intentrank-token") || "";
      $("token").addEventListener("change", () => sessionStorage.setItem("intentrank-token", $("token").value.trim()));
    }
    try {
      const arms = await api("/v1/arms");
      const sel = $("arm");
      for (const a of arms.arms) { const o = document.createElement("option"); o.value = a; o.textContent = a; sel.appendChild(o); }
    } catch (err) { status(err.message, true); }
    $("arm").addEventListener("change", restart);
    $("user").addEventListener("change", () => restart(false));
    $("restart").addEventListener("click", restart);
    new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) loadMore(); })
      .observe($("sentinel"));
    state.session = newSessionId();
    // the user's own arm (stable hash) on the first page; the selector then shows it
    state.arm = "";
    await loadMore();
  }
  window.intentrankDemo = state;  // for tests and curious people
  init();
})();
