// Agent console. Every text is inserted with textContent, never as HTML.
"use strict";
(function () {
  const KEY = "kefu.agent";
  const $ = (id) => document.getElementById(id);
  const REASONS = {
    safety: "安全", legal_media: "投诉/媒体", abuse: "辱骂", anger: "情绪激动",
    compensation: "赔偿", supervisor: "找主管", customer_request: "转人工", bot_failure: "机器人未解决",
  };
  const FIELDS = {
    stage: "进度", phone: "电话", when: "方便时间", name: "称呼", order_id: "订单号", product: "商品",
    return_type: "类型", return_reason: "原因", complaint_what: "事情", complaint_when: "时间",
    complaint_want: "诉求",
  };
  const CHANNELS = { web: "网页", widget: "网站插件", wechat: "微信公众号", wecom: "微信客服" };
  const STATUS = { queued: "排队中", agent: "接待中", callback: "待回电", closed: "已结束", bot: "机器人" };
  let auth = JSON.parse(sessionStorage.getItem(KEY) || "null");
  let current = null;
  let seen = new Set();
  let suggestion = null;
  let checkTimer = null;
  let refreshTimer = null;

  function showError(el, text) { el.textContent = text || ""; el.hidden = !text; }

  async function api(path, body) {
    const res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: Object.assign({ "Content-Type": "application/json" },
        auth ? { Authorization: "Bearer " + auth.token } : {}),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (res.status === 401 && auth) { logout(); }
    if (!res.ok) { const e = new Error(data.message || "请求失败"); e.data = data; e.status = res.status; throw e; }
    return data;
  }

  function logout() { sessionStorage.removeItem(KEY); auth = null; $("console").hidden = true; $("login").hidden = false; }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const data = await api("/api/agent/login", { username: $("username").value, password: $("password").value });
      auth = { token: data.token, username: data.username };
      sessionStorage.setItem(KEY, JSON.stringify(auth));
      showError($("login-error"), "");
      enter();
    } catch (e) { showError($("login-error"), e.message); }
  });

  function badge(el, reason) {
    el.textContent = REASONS[reason] || reason || "";
    el.className = "badge reason-" + (reason || "none");
  }

  async function refreshQueue() {
    const list = await api("/api/agent/conversations");
    const ul = $("queue");
    ul.replaceChildren();
    for (const c of list) {
      const li = document.createElement("li");
      li.className = "item" + (current === c.conversation_id ? " active" : "") + " status-" + c.status;
      li.dataset.id = c.conversation_id;
      const b = document.createElement("span");
      badge(b, c.reason);
      const s = document.createElement("span");
      s.className = "item-status";
      s.textContent = STATUS[c.status] || c.status;
      const t = document.createElement("span");
      t.className = "item-time";
      t.textContent = c.waiting_since ? new Date(c.waiting_since).toLocaleTimeString() : "";
      const last = document.createElement("div");
      last.className = "item-last";
      last.textContent = (c.summary && c.summary.last_message) || "";
      li.append(b, s, t, last);
      li.addEventListener("click", () => open(c.conversation_id));
      ul.append(li);
    }
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refreshQueue().catch(() => {}), 200);
  }

  function addLine(m) {
    if (seen.has(m.seq)) return;
    seen.add(m.seq);
    const li = document.createElement("li");
    li.className = "msg " + m.sender;
    li.dataset.seq = String(m.seq);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = m.sender === "visitor" ? "访客" : m.sender === "agent" ? "人工" : "机器人";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = m.text;
    li.append(who, bubble);
    let after = null;
    for (const el of $("transcript").children) { if (Number(el.dataset.seq) > m.seq) { after = el; break; } }
    $("transcript").insertBefore(li, after);
    $("transcript").scrollTop = $("transcript").scrollHeight;
  }

  function summaryRow(dl, label, value) {
    if (value === undefined || value === null || value === "") return;
    if (typeof value === "object" && !Object.keys(value).length) return;
    const dt = document.createElement("dt"); dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = Array.isArray(value) ? value.join(" → ")
      : typeof value === "object" ? Object.entries(value).map(([k, v]) => (FIELDS[k] || k) + "：" + v).join("；")
      : String(value);
    dl.append(dt, dd);
  }

  async function open(id) {
    current = id;
    seen = new Set();
    const c = await api("/api/agent/conversations/" + id);
    $("empty").hidden = true; $("detail").hidden = false;
    badge($("d-badge"), c.reason);
    $("d-status").textContent = (STATUS[c.status] || c.status) + "（优先级 " + c.priority + "）" + (c.agent ? " · " + c.agent : "");
    const dl = $("summary"); dl.replaceChildren();
    const s = c.summary || {};
    summaryRow(dl, "原因", REASONS[c.reason] || c.reason);
    summaryRow(dl, "渠道", (CHANNELS[c.channel] || c.channel) + (c.channel_user ? "（" + c.channel_user + "）" : ""));
    // What the visitor's platform refused (WeChat's 48-hour window, say): the agent must know.
    summaryRow(dl, "未送达", (c.delivery_failures || []).map((f) => "#" + f.seq + " " + f.message));
    summaryRow(dl, "意图", s.intents);
    summaryRow(dl, "已收集", s.slots);
    summaryRow(dl, "情绪趋势", s.tone_trend);
    summaryRow(dl, "情绪标签", s.tone_labels);
    summaryRow(dl, "回电", s.callback);
    // What in the visitor's own words showed the reason: the words, in their sentence.
    summaryRow(dl, "依据", (s.evidence || []).map((e) =>
      (REASONS[e.reason] || e.reason) + "：“" + e.match + "”（" + e.sentence + "）"));
    $("transcript").replaceChildren();
    c.transcript.forEach(addLine);
    $("claim").disabled = c.status === "agent" && c.agent === auth.username || c.status === "closed";
    $("release").disabled = c.status === "closed" || c.status === "bot";
    $("close").disabled = c.status === "closed";
    $("reply").disabled = $("reply-send").disabled = !(c.status === "agent" && c.agent === auth.username);
    scheduleRefresh();
  }

  async function act(path) {
    try { await api("/api/agent/conversations/" + current + "/" + path, {}); showError($("detail-error"), ""); await open(current); }
    catch (e) { showError($("detail-error"), e.message); }
  }
  $("claim").addEventListener("click", () => act("claim"));
  $("release").addEventListener("click", () => act("release"));
  $("close").addEventListener("click", () => act("close"));

  function renderCheck(v) {
    suggestion = v.suggestion;
    if (v.ok) { $("check").hidden = true; $("reply-send").disabled = false; return; }
    // Every violation, with where it is in the text (one span may break two rules).
    const box = $("check-text");
    box.textContent = "不符合服务用语规范（" + v.violations.length + "处）：";
    const list = document.createElement("ol");
    list.className = "violations";
    for (const item of v.violations) {
      const li = document.createElement("li");
      li.dataset.rule = item.rule;
      li.dataset.span = item.span.join("-");
      li.textContent = "第" + (item.span[0] + 1) + "–" + item.span[1] + "字“" + item.match + "”：" + item.reason + "。建议：" + item.rewrite;
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
      try { renderCheck(await api("/api/agent/check", { text: text })); } catch (e) { /* the server checks again */ }
    }, 200);
  });

  $("use-suggestion").addEventListener("click", () => {
    if (suggestion) { $("reply").value = suggestion; renderCheck({ ok: true, violations: [] }); }
  });

  $("reply-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("reply").value.trim();
    if (!text) return;
    try {
      const m = await api("/api/agent/conversations/" + current + "/messages", { text: text });
      addLine(m);
      $("reply").value = "";
      $("check").hidden = true;
      showError($("detail-error"), m.delivery && m.delivery.ok === false ? m.delivery.message : "");
    } catch (e) {
      if (e.data && e.data.error === "phrasing") renderCheck(e.data);
      else showError($("detail-error"), e.message);
    }
  });

  async function loadQuick() {
    const phrases = await api("/api/agent/phrases");
    const box = $("quick"); box.replaceChildren();
    for (const p of phrases) {
      const b = document.createElement("button");
      b.type = "button"; b.className = "chip"; b.textContent = p.text;
      b.addEventListener("click", () => { $("reply").value = p.text; $("reply").dispatchEvent(new Event("input")); });
      box.append(b);
    }
  }

  let retry = 0;
  function connect() {
    if (!auth) return;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + location.host + "/api/agent/ws?token=" + encodeURIComponent(auth.token));
    ws.onopen = () => { retry = 0; };
    ws.onmessage = (ev) => {
      const data = JSON.parse(ev.data);
      if (data.type === "message" && data.conversation_id === current) addLine(data);
      if (data.type === "delivery" && data.conversation_id === current) showError($("detail-error"), data.message);
      if (data.type === "mode" && data.conversation_id === current) open(current).catch(() => {});
      scheduleRefresh();
    };
    ws.onclose = () => { retry = Math.min(retry + 1, 6); setTimeout(connect, 500 * Math.pow(2, retry - 1)); };
  }

  function enter() {
    $("login").hidden = true; $("console").hidden = false;
    $("me").textContent = "· " + auth.username;
    refreshQueue().catch(() => {});
    loadQuick().catch(() => {});
    connect();
    setInterval(() => { if (auth) refreshQueue().catch(() => {}); }, 10000);
  }

  if (auth) enter();
})();
