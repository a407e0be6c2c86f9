// Agent console: the team's lists, the conversation, the reply box. Every text is inserted
// with textContent, never as HTML.
"use strict";
(function () {
  const D = window.Desk;
  const $ = (id) => document.getElementById(id);
  const TITLE = "客服工作台";
  const UNREAD = "kefu.unread";
  let current = null;       // the open conversation's id
  let currentItem = null;   // its listing
  let view = "queue";
  let query = "";
  let rows = [];            // the list shown
  let counts = {};
  const CHANNELS = { web: "网页", widget: "网站插件", wechat: "微信公众号", wecom: "微信客服" };
  let seen = new Set();
  let suggestion = null;
  let checkTimer = null;
  let refreshTimer = null;
  let unread = JSON.parse(sessionStorage.getItem(UNREAD) || "{}");  // id -> messages not read
  let audio = null;
  let alerted = 0;

  function showError(el, text) { el.textContent = text || ""; el.hidden = !text; }
  function saveUnread() { sessionStorage.setItem(UNREAD, JSON.stringify(unread)); }
  function unreadTotal() { return Object.values(unread).reduce((a, b) => a + b, 0); }

  D.onUnauthorized = () => leave();
  function leave() {
    D.save(null); sessionStorage.removeItem(UNREAD);
    $("console").hidden = true; $("login").hidden = false;
    document.title = TITLE;
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const data = await D.api("/api/agent/login", { username: $("username").value, password: $("password").value });
      D.save({ token: data.token, username: data.username, role: data.role, status: "online" });
      showError($("login-error"), "");
      enter();
    } catch (e) { showError($("login-error"), e.message); }
  });

  // --- alerts: the title's count, a short sound, the browser's notification ---------
  function updateTitle() {
    const n = (counts.queue || 0) + unreadTotal();
    document.title = n ? "(" + n + ") " + TITLE : TITLE;
  }
  function beep() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      const o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = 880; g.gain.value = 0.08;
      o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + 0.18);
    } catch (e) { /* no sound available */ }
  }
  function alertAgent(title, body) {
    if (Date.now() - alerted < 1500) return;  // one alert for a burst of events
    alerted = Date.now();
    beep();
    if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
      try { new Notification(title, { body: body, tag: "kefu" }); } catch (e) { /* not allowed here */ }
    }
  }
  $("notify").addEventListener("click", async () => {
    if (!("Notification" in window)) { $("notify").textContent = "浏览器不支持通知"; return; }
    const p = await Notification.requestPermission();
    $("notify").textContent = p === "granted" ? "通知已开启" : "通知未允许";
  });
  function notifyLabel() {
    if ("Notification" in window && Notification.permission === "granted") $("notify").textContent = "通知已开启";
  }

  // --- status and logout ---------------------------------------------------------
  async function setStatus(status) {
    const data = await D.api("/api/agent/status", { status: status });
    D.auth.status = data.status; D.save(D.auth);
    $("status-select").value = data.status;
    $("status-select").className = "status-" + data.status;
  }
  $("status-select").addEventListener("change", (ev) => setStatus(ev.target.value).catch(() => {}));
  $("logout").addEventListener("click", async () => {
    try { await D.api("/api/agent/logout", {}); } catch (e) { /* signed off anyway */ }
    leave();
  });

  // --- the lists -----------------------------------------------------------------
  for (const tab of document.querySelectorAll("#tabs .tab")) {
    tab.addEventListener("click", () => {
      view = tab.dataset.view; query = ""; $("search").value = "";
      refresh().catch(() => {});
    });
  }
  $("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    query = $("search").value.trim();
    refresh().catch(() => {});
  });

  async function refresh() {
    counts = await D.api("/api/agent/counts");
    for (const k of ["queue", "mine", "callback", "closed"]) {
      $("count-" + k).textContent = counts[k] || 0;
      $("count-" + k).classList.toggle("hot", k !== "closed" && (counts[k] || 0) > 0);
    }
    for (const tab of document.querySelectorAll("#tabs .tab")) tab.classList.toggle("active", !query && tab.dataset.view === view);
    const path = query ? "/api/agent/conversations?q=" + encodeURIComponent(query)
      : "/api/agent/conversations?view=" + view + (view === "closed" ? "&limit=50" : "");
    rows = await D.api(path);
    render();
    updateTitle();
  }

  function render() {
    const ul = $("queue");
    ul.replaceChildren();
    $("list-empty").hidden = rows.length > 0;
    $("list-empty").textContent = query ? "没有找到“" + query + "”" : "暂无会话";
    for (const c of rows) {
      const li = D.el("li", "item status-" + c.status + (current === c.conversation_id ? " active" : ""));
      li.dataset.id = c.conversation_id;
      const b = D.el("span"); D.badge(b, c.reason);
      const s = D.el("span", "item-status", D.STATUS[c.status] || c.status);
      if (c.agent && c.status === "agent") s.textContent += " · " + c.agent;
      const t = D.el("span", "item-time", D.when(c.status === "closed" ? c.updated_at : c.waiting_since || c.created_at));
      li.append(b, s, t);
      const meta = D.el("div", "item-meta");
      const wait = D.el("span", "item-wait");
      wait.dataset.since = c.status === "queued" || c.status === "callback" ? c.waiting_since || "" : "";
      const timer = D.el("span", "item-timer");
      meta.append(wait, timer);
      if (unread[c.conversation_id]) meta.append(D.el("span", "unread", unread[c.conversation_id]));
      li.append(meta);
      li.append(D.el("div", "item-last", (c.summary && c.summary.last_message) || ""));
      li.addEventListener("click", () => open(c.conversation_id));
      ul.append(li);
    }
    tick();
  }

  // Waiting times and first-response countdowns move every second, without a request.
  function tick() {
    for (const li of $("queue").children) {
      const c = rows.find((r) => r.conversation_id === li.dataset.id);
      if (!c) continue;
      const wait = li.querySelector(".item-wait");
      wait.textContent = wait.dataset.since ? "已等待" + D.span((Date.now() - new Date(wait.dataset.since)) / 1000) : "";
      const [text, state] = D.timer(c);
      const timer = li.querySelector(".item-timer");
      timer.textContent = text; timer.className = "item-timer " + state;
    }
    if (currentItem) {
      const [text, state] = D.timer(currentItem);
      $("d-timer").textContent = text; $("d-timer").className = "timer " + state;
    }
  }
  setInterval(tick, 1000);

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refresh().catch(() => {}), 200);
  }

  // --- one conversation ------------------------------------------------------------
  function addLine(m) {
    if (seen.has(m.seq)) return;
    seen.add(m.seq);
    const li = D.el("li", "msg " + m.sender);
    li.dataset.seq = String(m.seq);
    const who = D.el("span", "who", (m.sender === "visitor" ? "访客" : m.sender === "agent" ? "人工" : "机器人") + " · " + D.when(m.created_at));
    li.append(who, D.el("div", "bubble", m.text));
    let after = null;
    for (const el of $("transcript").children) { if (Number(el.dataset.seq) > m.seq) { after = el; break; } }
    $("transcript").insertBefore(li, after);
    $("transcript").scrollTop = $("transcript").scrollHeight;
  }

  async function open(id) {
    if (current !== id) seen = new Set();
    current = id;
    $("detail").dataset.conversationId = id;  // what review-flag.js flags messages of
    const c = await D.api("/api/agent/conversations/" + id);
    currentItem = c;
    if (unread[id]) { delete unread[id]; saveUnread(); render(); updateTitle(); }
    $("empty").hidden = true; $("detail").hidden = false;
    D.badge($("d-badge"), c.reason);
    $("d-status").textContent = (D.STATUS[c.status] || c.status) + "（优先级 " + c.priority + "）" + (c.agent ? " · " + c.agent : "");
    const dl = $("summary"); dl.replaceChildren();
    for (const line of c.brief || []) {
      const dt = D.el("dt", null, line.label), dd = D.el("dd", null, line.text);
      if (line.label === "转接") dd.className = "note";
      dl.append(dt, dd);
    }
    dl.append(D.el("dt", null, "渠道"), D.el("dd", null,
      (CHANNELS[c.channel] || c.channel) + (c.channel_user ? "（" + c.channel_user + "）" : "")));
    // What the visitor's platform refused (WeChat's 48-hour window, say): the agent must know.
    for (const f of c.delivery_failures || []) {
      dl.append(D.el("dt", null, "未送达"), D.el("dd", "note", "#" + f.seq + " " + f.message));
    }
    dl.append(D.el("dt", null, "会话号"), D.el("dd", "mono", c.conversation_id));
    if (seen.size === 0) $("transcript").replaceChildren();
    c.transcript.forEach(addLine);
    const mine = c.status === "agent" && c.agent === D.auth.username;
    $("claim").disabled = mine || c.status === "closed" || c.status === "bot" || (c.status === "agent" && D.auth.role !== "supervisor");
    $("release").disabled = c.status === "closed" || c.status === "bot";
    $("close").disabled = c.status === "closed";
    $("reply").disabled = $("reply-send").disabled = !mine;
    $("transfer-bar").hidden = !(mine || (D.auth.role === "supervisor" && (c.status === "agent" || c.status === "queued")) || c.status === "queued");
    loadColleagues().catch(() => {});
    tick();
    scheduleRefresh();
  }

  async function loadColleagues() {
    if ($("transfer-bar").hidden) return;
    const list = await D.api("/api/agent/agents");
    const select = $("transfer-to"); select.replaceChildren();
    for (const a of list) {
      if (a.username === (currentItem && currentItem.agent)) continue;
      const free = a.status === "online" && a.active < a.capacity;
      const o = D.el("option", null, a.username + "（" + D.AGENT_STATUS[a.status] + " " + a.active + "/" + a.capacity + "）");
      o.value = a.username; o.disabled = !free;
      select.append(o);
    }
    if (!select.options.length) select.append(D.el("option", null, "暂无其他同事"));
  }
  $("transfer").addEventListener("click", async () => {
    const to = $("transfer-to").value;
    if (!to) { showError($("detail-error"), "没有在线且有空位的同事可以转接"); return; }
    try {
      await D.api("/api/agent/conversations/" + current + "/transfer", { to: to, note: $("transfer-note").value });
      $("transfer-note").value = ""; showError($("detail-error"), "");
      await open(current);
    } catch (e) { showError($("detail-error"), e.message); }
  });

  async function act(path) {
    try { await D.api("/api/agent/conversations/" + current + "/" + path, {}); showError($("detail-error"), ""); await open(current); }
    catch (e) { showError($("detail-error"), e.message); }
  }
  $("claim").addEventListener("click", () => act("claim"));
  $("release").addEventListener("click", () => act("release"));
  $("close").addEventListener("click", () => act("close"));

  // --- the reply box: checked as the agent types; Enter sends -----------------------
  function renderCheck(v) {
    suggestion = v.suggestion;
    if (v.ok) { $("check").hidden = true; $("reply-send").disabled = false; return; }
    const box = $("check-text");
    box.textContent = "不符合服务用语规范（" + v.violations.length + "处）：";
    const list = D.el("ol", "violations");
    for (const item of v.violations) {
      const li = D.el("li", null, "第" + (item.span[0] + 1) + "–" + item.span[1] + "字“" + item.match + "”：" + item.reason + "。建议：" + item.rewrite);
      li.dataset.rule = item.rule;
      li.dataset.span = item.span.join("-");
      list.appendChild(li);
    }
    box.appendChild(list);
    $("use-suggestion").hidden = !suggestion;
    $("use-suggestion").textContent = suggestion ? "采用建议改写：" + suggestion : "采用建议改写";
    $("check").hidden = false;
    $("reply-send").disabled = true;  // a forbidden phrase is never sent
  }

  $("reply").addEventListener("input", () => {
    clearTimeout(checkTimer);
    const text = $("reply").value;
    if (!text.trim()) { $("check").hidden = true; return; }
    checkTimer = setTimeout(async () => {
      try { renderCheck(await D.api("/api/agent/check", { text: text })); } catch (e) { /* the server checks again */ }
    }, 200);
  });
  $("reply").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      if (!$("reply-send").disabled) $("reply-form").requestSubmit();
    }
  });

  $("use-suggestion").addEventListener("click", () => {
    if (suggestion) { $("reply").value = suggestion; renderCheck({ ok: true, violations: [] }); }
  });

  $("reply-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("reply").value.trim();
    if (!text) return;
    try {
      const m = await D.api("/api/agent/conversations/" + current + "/messages", { text: text });
      addLine(m);
      $("reply").value = "";
      $("check").hidden = true;
      showError($("detail-error"), m.delivery && m.delivery.ok === false ? m.delivery.message : "");
      if (currentItem && currentItem.first_response_due) open(current).catch(() => {});
    } catch (e) {
      if (e.data && e.data.error === "phrasing") renderCheck(e.data);
      else showError($("detail-error"), e.message);
    }
  });

  async function loadQuick() {
    const phrases = await D.api("/api/agent/phrases");
    const box = $("quick"); box.replaceChildren();
    for (const p of phrases) {
      const b = D.el("button", "chip", p.text);
      b.type = "button";
      b.addEventListener("click", () => { $("reply").value = p.text; $("reply").dispatchEvent(new Event("input")); $("reply").focus(); });
      box.append(b);
    }
  }

  // --- live events -------------------------------------------------------------------
  const known = new Map();  // id -> last status seen, to tell new arrivals
  let retry = 0;
  function connect() {
    if (!D.auth) return;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/api/agent/ws?token=" + encodeURIComponent(D.auth.token));
    ws.onopen = () => { retry = 0; };
    ws.onmessage = (ev) => {
      const data = JSON.parse(ev.data);
      const id = data.conversation_id;
      if (data.type === "message") {
        if (id === current && !document.hidden) addLine(data);
        else if (id === current) { addLine(data); }
        if (data.sender === "visitor" && (id !== current || document.hidden)) {
          const row = rows.find((r) => r.conversation_id === id);
          const watched = (row && (row.agent === D.auth.username || row.status === "queued")) || known.get(id) === "mine";
          if (watched) {
            unread[id] = (unread[id] || 0) + 1; saveUnread();
            alertAgent("访客新消息", data.text);
          }
        }
      }
      if (data.type === "mode") {
        const before = known.get(id);
        if (data.mode === "agent" && data.agent === D.auth.username && before !== "mine") {
          known.set(id, "mine");
          alertAgent("新会话分配给您", D.REASONS[data.reason] || "");
        } else if (data.mode === "queued" && before !== "queued") {
          known.set(id, "queued");
          alertAgent("新的排队会话", D.REASONS[data.reason] || "");
        } else if (data.mode !== "agent" || data.agent !== D.auth.username) {
          known.set(id, data.mode);
        }
        if (id === current) open(current).catch(() => {});
      }
      if (data.type === "transfer" && data.to === D.auth.username) {
        alertAgent("同事转来会话", data.note ? "备注：" + data.note : "");
      }
      if (data.type === "delivery" && data.conversation_id === current) showError($("detail-error"), data.message);
      scheduleRefresh();
    };
    ws.onclose = () => { retry = Math.min(retry + 1, 6); setTimeout(connect, 500 * Math.pow(2, retry - 1)); };
  }

  function enter() {
    $("login").hidden = true; $("console").hidden = false;
    $("me").textContent = D.auth.username + (D.auth.role === "supervisor" ? "（主管）" : "");
    $("to-supervisor").hidden = D.auth.role !== "supervisor";
    notifyLabel();
    setStatus(D.auth.status || "online").catch(() => {});
    refresh().catch(() => {});
    loadQuick().catch(() => {});
    connect();
    // Polling keeps the lists right after a missed event, and tells the desk the console is here.
    setInterval(() => { if (D.auth) refresh().catch(() => {}); }, 10000);
  }

  if (D.auth) enter();
})();
