// Visitor web chat. Every text is inserted with textContent, never as HTML.
"use strict";
(function () {
  const KEY = "kefu.visitor";
  const list = document.getElementById("messages");
  const typing = document.getElementById("typing");
  const statusEl = document.getElementById("status");
  const notice = document.getElementById("notice");
  const rating = document.getElementById("rating");
  const restart = document.getElementById("restart");
  const form = document.getElementById("composer");
  const input = document.getElementById("text");
  const conn = document.getElementById("conn");
  const seen = new Set();
  // In a shop's page (the widget's iframe) the conversation lasts across that shop's page
  // loads (localStorage; Chromium keeps a framed site's storage per shop); on the desk's
  // own page it lasts as long as the tab.
  const widget = document.body.dataset.channel === "widget";
  const params = new URLSearchParams(location.search);
  const storage = (function () {
    try { const s = widget ? localStorage : sessionStorage; s.getItem(KEY); return s; }
    catch (e) { const m = new Map(); return { getItem: (k) => (m.has(k) ? m.get(k) : null), setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k) }; }
  })();
  const traditional = /^zh-(tw|hk|mo|hant)/i.test(document.documentElement.lang);
  if (widget && /^#[0-9a-fA-F]{3,8}$/.test(params.get("color") || "")) {
    document.documentElement.style.setProperty("--kefu-color", params.get("color"));
  }
  let state = JSON.parse(storage.getItem(KEY) || "null");
  let lastSeq = 0;
  let ws = null;
  let retry = 0;
  const MODES = traditional
    ? { bot: "智能客服", queued: "排隊等待人工客服", agent: "人工客服接待中", callback: "登記回電", closed: "會話已結束" }
    : { bot: "智能客服", queued: "排队等待人工客服", agent: "人工客服接待中", callback: "登记回电", closed: "会话已结束" };
  if (traditional) {  // the page's language hint: the chat's own words in traditional script
    for (const [id, text] of [["title", "線上客服"], ["send", "發送"], ["new-chat", "開始新的諮詢"], ["ended", "本次會話已結束。"], ["typing-text", "對方正在輸入…"]]) {
      const el = document.getElementById(id);
      if (el) el.textContent = text;
    }
    input.placeholder = "請輸入您的問題，按 Enter 發送";
  }
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;

  function save() { storage.setItem(KEY, JSON.stringify(state)); }

  function showNotice(text) { notice.textContent = text; notice.hidden = !text; }

  function add(m) {
    if (!m || typeof m.seq !== "number" || seen.has(m.seq)) return;
    seen.add(m.seq);
    lastSeq = Math.max(lastSeq, m.seq);
    const li = document.createElement("li");
    li.className = "msg " + (m.sender || "bot");
    li.dataset.seq = String(m.seq);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = m.sender === "visitor" ? "我" : m.sender === "agent" ? "人工客服" : "智能客服";
    const bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.dataset.kefuMessage = m.sender || "bot";
    bubble.textContent = m.text;
    li.append(who, bubble);
    // Keep sequence order even when the live feed and a reply race each other.
    let after = null;
    for (const el of list.children) { if (Number(el.dataset.seq) > m.seq) { after = el; break; } }
    list.insertBefore(li, after);
    list.scrollTop = list.scrollHeight;
  }

  function setMode(mode, queue) {
    if (!mode) return;
    let text = MODES[mode] || mode;
    if (mode === "queued" && queue) {
      text += queue.ahead > 0 ? "：前面还有 " + queue.ahead + " 位，预计 " + queue.wait : "：您是下一位";
    }
    statusEl.textContent = text;
    statusEl.dataset.mode = mode;
    const closed = mode === "closed";
    rating.hidden = !closed || state.rated;
    restart.hidden = !closed;
    if (closed && !rating.hidden) rating.scrollIntoView({ block: "nearest" });
    input.disabled = false;
  }

  async function api(path, body) {
    const res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: Object.assign({ "Content-Type": "application/json" },
        state ? { Authorization: "Bearer " + state.token } : {}),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) { const e = new Error(data.message || "请求失败"); e.status = res.status; throw e; }
    return data;
  }

  async function start() {
    if (!state) {
      const opening = { timezone: zone, channel: widget ? "widget" : "web" };
      if (traditional) opening.script = "traditional";
      if (widget && params.get("topic")) opening.topic = params.get("topic");
      const data = await api("/api/visitor/conversations", opening);
      state = { id: data.conversation_id, token: data.token, rated: false };
      save();
      data.replies.forEach(add);
      setMode(data.mode);
    } else {
      try {
        const data = await api("/api/visitor/conversations/" + state.id + "/messages?after=0");
        data.messages.forEach(add);
        setMode(data.mode, data.queue);
      } catch (e) {
        if (e.status === 404) { storage.removeItem(KEY); state = null; return start(); }
        throw e;
      }
    }
    connect();
  }

  function connect() {
    if (ws && ws.readyState <= WebSocket.OPEN) return;  // connecting or open already
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/api/visitor/conversations/" + state.id +
      "/ws?token=" + encodeURIComponent(state.token) + "&after=" + lastSeq);
    ws.onopen = () => { retry = 0; conn.className = "dot on"; showNotice(""); };
    ws.onmessage = (ev) => {
      const data = JSON.parse(ev.data);
      if (data.type === "message") { add(data); if (data.sender !== "visitor") typing.hidden = true; }
      if (data.type === "mode") setMode(data.mode, data.queue);
      if (data.type === "typing") typing.hidden = false;
    };
    ws.onclose = () => {
      conn.className = "dot off";
      showNotice("网络连接中断，正在重新连接…");
      retry = Math.min(retry + 1, 6);
      if (navigator.onLine) setTimeout(connect, 500 * Math.pow(2, retry - 1));  // then replayed
    };
  }

  // A dropped network: close at once, come back as soon as it returns, then replay.
  window.addEventListener("offline", () => { if (ws) ws.close(); });
  window.addEventListener("online", () => { retry = 0; connect(); });

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    typing.hidden = false;
    try {
      const data = await api("/api/visitor/conversations/" + state.id + "/messages", { text: text, timezone: zone });
      data.replies.forEach(add);
      setMode(data.mode, data.queue);
      showNotice("");
    } catch (e) {
      input.value = text;  // nothing the visitor typed is lost
      showNotice(e.message || "发送失败，请稍后重试。");
    } finally {
      typing.hidden = true;
    }
  });

  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit(); }
  });

  const stars = rating.querySelector(".stars");
  for (let score = 1; score <= 5; score++) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "star";
    b.textContent = score + " 分";
    b.title = ["非常不满意", "不满意", "一般", "满意", "非常满意"][score - 1];
    b.addEventListener("click", async () => {
      try {
        await api("/api/visitor/conversations/" + state.id + "/satisfaction", { score: score });
        state.rated = true; save();
        rating.hidden = true;
        showNotice("感谢您的评价！");
      } catch (e) { showNotice(e.message); }
    });
    stars.append(b);
  }

  // After the close: a new conversation, without reloading the page.
  document.getElementById("new-chat").addEventListener("click", () => {
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    storage.removeItem(KEY);
    state = null; lastSeq = 0; seen.clear();
    list.replaceChildren();
    restart.hidden = true; rating.hidden = true; showNotice("");
    start().catch((e) => showNotice("暂时无法连接客服，请稍后重试。（" + e.message + "）"));
  });

  start().catch((e) => showNotice("暂时无法连接客服，请稍后刷新重试。（" + e.message + "）"));
})();
