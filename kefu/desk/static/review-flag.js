// The console's "the bot got this wrong" flag, kept apart from agent.js: a small button
// under each visitor message (`.msg.visitor[data-seq]`) of the open conversation (its id
// from `[data-conversation-id]`, or the active item `#queue li.active[data-id]`) that
// posts the intent the agent meant to /api/agent/conversations/{id}/messages/{seq}/correction.
"use strict";
(function () {
  const KEY = "kefu.agent";
  let intents = null;
  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = "/static/review.css";
  document.head.appendChild(style);

  function token() { const a = JSON.parse(sessionStorage.getItem(KEY) || "null"); return a && a.token; }
  function conversationId() {
    const tagged = document.querySelector("[data-conversation-id]");
    if (tagged) return tagged.dataset.conversationId;
    const active = document.querySelector("#queue li.active");
    return active ? active.dataset.id : null;
  }
  async function call(path, body) {
    const res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.message || "请求失败");
    return data;
  }

  async function ask(li, button) {
    if (intents === null) intents = (await call("/api/review/intents")).intents;
    const form = document.createElement("form");
    form.className = "flag-form";
    const select = document.createElement("select");
    for (const name of intents) {
      const option = document.createElement("option");
      option.value = name; option.textContent = name;
      select.appendChild(option);
    }
    const ok = document.createElement("button");
    ok.type = "submit"; ok.textContent = "确定";
    form.append(select, ok);
    button.replaceWith(form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const done = document.createElement("span");
      done.className = "flag-done";
      try {
        const r = await call("/api/agent/conversations/" + encodeURIComponent(conversationId()) +
          "/messages/" + li.dataset.seq + "/correction", { intent: select.value });
        done.textContent = "已标记识别有误，应为 " + r.intent;
      } catch (e) { done.textContent = e.message; }
      form.replaceWith(done);
    });
  }

  function decorate(root) {
    for (const li of root.querySelectorAll(".msg.visitor[data-seq]")) {
      if (li.querySelector(".flag-wrong, .flag-form, .flag-done")) continue;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "flag-wrong";
      button.textContent = "识别有误";
      button.title = "机器人理解错了这句话：标记正确的意图，供复盘和训练";
      button.addEventListener("click", () => { ask(li, button).catch(() => {}); });
      li.appendChild(button);
    }
  }

  new MutationObserver(() => decorate(document)).observe(document.body, { childList: true, subtree: true });
  decorate(document);
})();
