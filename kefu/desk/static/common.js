// Shared by the console and the supervisor page: the API, words for codes, times.
// Every text is inserted with textContent, never as HTML.
"use strict";
window.Desk = (function () {
  const KEY = "kefu.agent";
  const REASONS = {
    safety: "安全", legal_media: "投诉/媒体", abuse: "辱骂", anger: "情绪激动",
    compensation: "赔偿", supervisor: "找主管", customer_request: "转人工", bot_failure: "机器人未解决",
  };
  const STATUS = { queued: "排队中", agent: "接待中", callback: "待回电", closed: "已结束", bot: "机器人" };
  const AGENT_STATUS = { online: "在线", away: "小休", offline: "离线" };
  const desk = {
    REASONS, STATUS, AGENT_STATUS,
    auth: JSON.parse(sessionStorage.getItem(KEY) || "null"),
    onUnauthorized: null,
    save(auth) { desk.auth = auth; if (auth) sessionStorage.setItem(KEY, JSON.stringify(auth)); else sessionStorage.removeItem(KEY); },
    async api(path, body) {
      const res = await fetch(path, {
        method: body === undefined ? "GET" : "POST",
        headers: Object.assign({ "Content-Type": "application/json" },
          desk.auth ? { Authorization: "Bearer " + desk.auth.token } : {}),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const data = await res.json().catch(() => ({}));
      if (res.status === 401 && desk.auth && desk.onUnauthorized) desk.onUnauthorized();
      if (!res.ok) { const e = new Error(data.message || "请求失败"); e.data = data; e.status = res.status; throw e; }
      return data;
    },
    el(tag, cls, text) {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    },
    pad(n) { return String(n).padStart(2, "0"); },
    // 14:05 today, 05-12 14:05 on another day this year, 2023-05-12 otherwise.
    when(iso) {
      if (!iso) return "";
      const d = new Date(iso), now = new Date();
      const time = desk.pad(d.getHours()) + ":" + desk.pad(d.getMinutes());
      if (d.toDateString() === now.toDateString()) return time;
      const day = desk.pad(d.getMonth() + 1) + "-" + desk.pad(d.getDate());
      return (d.getFullYear() === now.getFullYear() ? day : d.getFullYear() + "-" + day) + " " + time;
    },
    // 45秒, 3分钟, 1小时20分
    span(seconds) {
      seconds = Math.max(0, Math.round(seconds));
      if (seconds < 60) return seconds + "秒";
      if (seconds < 3600) return Math.floor(seconds / 60) + "分钟";
      return Math.floor(seconds / 3600) + "小时" + Math.floor((seconds % 3600) / 60) + "分";
    },
    clock(seconds) {
      seconds = Math.max(0, Math.round(seconds));
      return Math.floor(seconds / 60) + ":" + desk.pad(seconds % 60);
    },
    // The first-response timer of a conversation: [text, state] with state ok / late / done.
    timer(c) {
      if (c.first_response_due) {
        const left = (new Date(c.first_response_due) - Date.now()) / 1000;
        return left >= 0 ? ["首响剩余 " + desk.clock(left), "ok"] : ["首响超时 " + desk.clock(-left), "late"];
      }
      if (c.first_response_s !== null && c.first_response_s !== undefined) return ["首响 " + desk.span(c.first_response_s), "done"];
      return ["", ""];
    },
    badge(el, reason) {
      el.textContent = REASONS[reason] || reason || "";
      el.className = "badge reason-" + (reason || "none");
    },
  };
  return desk;
})();
