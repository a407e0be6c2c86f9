// The review page: what the bot did not understand, with the conversation around it.
// Every text is inserted with textContent, never as HTML.
"use strict";
(function () {
  const KEY = "kefu.agent"; // the same sign-in as the agent console
  const $ = (id) => document.getElementById(id);
  const WHY = { fallback: "没听懂", low_confidence: "拿不准", bot_failure: "机器人未解决", corrected: "客服纠正" };
  const WHO = { visitor: "访客", bot: "机器人", agent: "客服" };
  let auth = JSON.parse(sessionStorage.getItem(KEY) || "null");
  let intents = [];

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function showError(node, text) { node.textContent = text || ""; node.hidden = !text; }

  async function api(path, body) {
    const res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: Object.assign({ "Content-Type": "application/json" },
        auth ? { Authorization: "Bearer " + auth.token } : {}),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (res.status === 401 && auth) { logout(); }
    if (!res.ok) { const e = new Error(data.message || "请求失败"); e.status = res.status; throw e; }
    return data;
  }

  function logout() { sessionStorage.removeItem(KEY); auth = null; $("inbox").hidden = true; $("login").hidden = false; }

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
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });

  function when(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString("zh-CN", { hour12: false });
  }

  function transcript(messages) {
    const list = el("ol", "context");
    for (const m of messages) {
      const li = el("li", "msg " + m.sender + (m.this ? " this" : ""));
      li.appendChild(el("span", "who", WHO[m.sender] || m.sender));
      li.appendChild(el("span", "bubble", m.text));
      list.appendChild(li);
    }
    return list;
  }

  function labelForm(item) {
    const form = el("form", "label");
    form.appendChild(el("span", null, "加入训练数据，意图："));
    const select = el("select");
    const guess = (item.intended && item.intended[0]) || item.predicted;
    const none = el("option", null, "选择意图…");
    none.value = "";
    select.appendChild(none);
    for (const name of intents) {
      const option = el("option", null, name);
      option.value = name;
      if (name === guess) option.selected = true;
      select.appendChild(option);
    }
    form.appendChild(select);
    const button = el("button", null, "写入");
    button.type = "submit";
    form.appendChild(button);
    const result = el("span");
    form.appendChild(result);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!select.value) { result.className = "error"; result.textContent = "请先选择意图"; return; }
      button.disabled = true;
      try {
        const r = await api("/api/review/label", { text: item.text, intent: select.value });
        result.className = "ok";
        result.textContent = "已写入 " + r.file + ":" + r.line + "（重新训练后生效）";
      } catch (e) {
        result.className = "error";
        result.textContent = e.message;
        button.disabled = false;
      }
    });
    return form;
  }

  function card(item) {
    const li = el("li", "card");
    const head = el("div", "card-head");
    const count = el("div", "count", item.count);
    count.appendChild(el("small", null, "次"));
    head.appendChild(count);
    head.appendChild(el("div", "card-text", item.text));
    head.appendChild(el("div", "seen", when(item.last_seen)));
    const meta = el("div", "card-meta");
    for (const r of item.reasons) meta.appendChild(el("span", "why why-" + r, WHY[r] || r));
    const guess = el("span", "guess", "机器人判断 ");
    guess.appendChild(el("code", null, item.predicted || "—"));
    if (item.confidence !== null && item.confidence !== undefined) {
      guess.appendChild(document.createTextNode(" 置信度 " + Number(item.confidence).toFixed(2)));
    }
    meta.appendChild(guess);
    if (item.intended && item.intended.length) {
      const meant = el("span", "guess", "客服认为是 ");
      meant.appendChild(el("code", null, item.intended.join("、")));
      meta.appendChild(meant);
    }
    meta.appendChild(el("span", null, item.conversation_ids.length + " 个会话"));
    head.appendChild(meta);
    li.appendChild(head);
    const body = el("div", "card-body");
    body.hidden = true;
    for (const o of item.occurrences) {
      if (!o.context) continue;
      const block = el("div", "occurrence");
      block.appendChild(el("h3", null, "会话 " + o.conversation_id.slice(0, 8) + " · " + when(o.at) +
        " · " + o.reasons.map((r) => WHY[r] || r).join("、")));
      block.appendChild(transcript(o.context));
      body.appendChild(block);
    }
    body.appendChild(labelForm(item));
    li.appendChild(body);
    head.addEventListener("click", () => { body.hidden = !body.hidden; });
    return li;
  }

  async function load() {
    const params = new URLSearchParams();
    if ($("reason").value) params.set("reason", $("reason").value);
    if ($("since").value.trim()) params.set("since", $("since").value.trim());
    try {
      const data = await api("/api/review?" + params.toString());
      const list = $("items");
      list.replaceChildren(...data.items.map(card));
      $("total").textContent = data.total ? "共 " + data.total + " 条，按出现次数排序" +
        (data.total > data.items.length ? "（显示前 " + data.items.length + " 条）" : "") : "没有需要复盘的消息。";
      showError($("inbox-error"), "");
      if (data.items.length) list.firstChild.querySelector(".card-body").hidden = false;
    } catch (e) { showError($("inbox-error"), e.message); }
  }

  async function enter() {
    $("login").hidden = true;
    $("inbox").hidden = false;
    $("me").textContent = auth.username;
    try { intents = (await api("/api/review/intents")).intents; } catch (e) { intents = []; }
    await load();
  }

  if (auth) enter();
})();
