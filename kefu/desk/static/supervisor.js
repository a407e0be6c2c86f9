// The supervisor's page: agents by status, the live queue, today's metrics with charts
// (SVG drawn here, no external library), and the quality review linked to transcripts.
"use strict";
(function () {
  const D = window.Desk;
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let timer = null;

  function showError(el, text) { el.textContent = text || ""; el.hidden = !text; }
  D.onUnauthorized = () => leave();
  function leave() { D.save(null); $("board").hidden = true; $("login").hidden = false; clearInterval(timer); }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const data = await D.api("/api/agent/login", { username: $("username").value, password: $("password").value });
      if (data.role !== "supervisor") { showError($("login-error"), "需要主管账号才能查看看板。"); return; }
      D.save({ token: data.token, username: data.username, role: data.role, status: "away" });
      showError($("login-error"), "");
      enter();
    } catch (e) { showError($("login-error"), e.message); }
  });
  $("logout").addEventListener("click", async () => {
    try { await D.api("/api/agent/logout", {}); } catch (e) { /* signed off anyway */ }
    leave();
  });

  function since() {
    const d = new Date(); d.setHours(0, 0, 0, 0);
    return d.toISOString();
  }
  function percent(x) { return x === null || x === undefined ? "—" : Math.round(x * 100) + "%"; }
  function seconds(x) { return x === null || x === undefined ? "—" : D.span(x); }

  function card(label, value, sub) {
    const c = D.el("div", "card");
    c.append(D.el("div", "label", label), D.el("div", "value", value));
    if (sub) c.append(D.el("div", "sub", sub));
    return c;
  }

  function renderCards(m) {
    $("cards").replaceChildren(
      card("今日会话", m.conversations),
      card("转人工", m.handoffs, "转人工率 " + percent(m.handoff_rate)),
      card("机器人独立解决", percent(m.bot_resolution_rate)),
      card("首次响应 P50", seconds(m.first_response_s.p50), "P90 " + seconds(m.first_response_s.p90)),
      card("排队等待 P50", seconds(m.wait_s.p50), "P90 " + seconds(m.wait_s.p90)),
      card("首响超时", m.sla_breaches, "次"),
      card("满意度", m.csat.avg === null ? "—" : m.csat.avg.toFixed(1) + " / 5", m.csat.count + " 份评价"),
      card("排队中", m.queue.waiting),
      card("客服在线", m.agents.online, "小休 " + m.agents.away + " · 离线 " + m.agents.offline),
    );
  }

  // A bar chart: [{label, n, cls}] into an <svg viewBox="0 0 520 200">.
  function bars(svg, items, empty) {
    svg.replaceChildren();
    const max = Math.max(1, ...items.map((i) => i.n));
    const total = items.reduce((a, i) => a + i.n, 0);
    const w = 520, h = 200, left = 8, bottom = 36, top = 18;
    const step = (w - left * 2) / Math.max(1, items.length);
    items.forEach((item, i) => {
      const height = ((h - bottom - top) * item.n) / max;
      const x = left + i * step + step * 0.15;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", x); rect.setAttribute("y", h - bottom - height);
      rect.setAttribute("width", step * 0.7); rect.setAttribute("height", Math.max(height, item.n ? 1 : 0));
      rect.setAttribute("class", "bar " + (item.cls || ""));
      const value = document.createElementNS(SVG, "text");
      value.setAttribute("x", x + step * 0.35); value.setAttribute("y", h - bottom - height - 4);
      value.setAttribute("text-anchor", "middle"); value.textContent = String(item.n);
      const label = document.createElementNS(SVG, "text");
      label.setAttribute("x", x + step * 0.35); label.setAttribute("y", h - bottom + 16);
      label.setAttribute("text-anchor", "middle"); label.textContent = item.label;
      svg.append(rect, value, label);
    });
    if (!total) {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", w / 2); t.setAttribute("y", h / 2); t.setAttribute("text-anchor", "middle");
      t.textContent = empty; svg.append(t);
    }
  }

  function buckets(list, late) {
    let previous = 0;
    return list.map((b) => {
      const label = b.le === null ? ">" + D.span(previous) : "≤" + D.span(b.le);
      const item = { label: label, n: b.n, cls: late !== undefined && (b.le === null || b.le > late) ? "late" : "" };
      if (b.le !== null) previous = b.le;
      return item;
    });
  }

  function renderCharts(m, dist) {
    const reasons = Object.keys(D.REASONS).map((code) => ({ label: D.REASONS[code], n: m.handoffs_by_reason[code] || 0 }));
    bars($("chart-reasons"), reasons, "今日还没有转人工");
    bars($("chart-csat"), dist.csat.map((r) => ({ label: r.score + "分", n: r.n, cls: "star" })), "今日还没有评价");
    bars($("chart-first"), buckets(dist.first_response_s, 60), "今日还没有人工首次回复");
    bars($("chart-wait"), buckets(dist.wait_s), "今日还没有排队接入");
  }

  function renderAgents(list) {
    const box = $("agents"); box.replaceChildren();
    for (const status of ["online", "away", "offline"]) {
      const col = D.el("div");
      const people = list.filter((a) => a.status === status);
      col.append(D.el("h3", null, D.AGENT_STATUS[status] + "（" + people.length + "）"));
      const ul = D.el("ul");
      for (const a of people) {
        ul.append(D.el("li", null, a.username + (a.role === "supervisor" ? "（主管）" : "") + " · 接待 " + a.active + "/" + a.capacity));
      }
      col.append(ul); box.append(col);
    }
  }

  function renderQueue(list) {
    $("queue-count").textContent = list.length;
    const ul = $("live-queue"); ul.replaceChildren();
    if (!list.length) ul.append(D.el("li", "list-empty", "当前没有排队的会话"));
    for (const c of list) {
      const li = D.el("li");
      const b = D.el("span"); D.badge(b, c.reason);
      const waited = c.waiting_since ? " 已等待" + D.span((Date.now() - new Date(c.waiting_since)) / 1000) : "";
      const [countdown] = D.timer(c);
      li.append(b, document.createTextNode(" " + c.conversation_id.slice(0, 8) + waited + " " + countdown));
      ul.append(li);
    }
  }

  const FINDINGS = {
    blocked_reply: "被拦截的回复", slow_reply: "回复慢", first_response: "首次回复超时",
    no_reply: "没有回复", tone_rising: "访客情绪走高", low_rating: "低评分", fair_rating: "一般评分",
  };

  function renderQuality(list) {
    const body = $("quality"); body.replaceChildren();
    $("quality-empty").hidden = list.length > 0;
    for (const q of list) {
      const tr = D.el("tr");
      const id = D.el("td", "mono");
      const link = D.el("a", null, q.conversation_id.slice(0, 8));
      link.addEventListener("click", () => showTranscript(q.conversation_id, null));
      id.append(link);
      const score = D.el("td", "score " + (q.score < 80 ? "low" : q.score >= 95 ? "high" : ""), q.score);
      const findings = D.el("td");
      const ul = D.el("ul");
      if (!q.findings.length) ul.append(D.el("li", "ok-text", "无问题"));
      for (const f of q.findings) {
        const li = D.el("li");
        const a = D.el("a", null, (FINDINGS[f.kind] || f.kind) + " " + D.when(f.at));
        a.title = "在会话记录中查看";
        a.addEventListener("click", () => showTranscript(q.conversation_id, f.at));
        li.append(a, document.createTextNode("：" + f.detail));
        ul.append(li);
      }
      findings.append(ul);
      tr.append(id, D.el("td", null, q.agent || ""), score, findings);
      body.append(tr);
    }
  }

  // The transcript, scrolled to the message nearest the finding's moment.
  async function showTranscript(id, at) {
    const c = await D.api("/api/agent/conversations/" + id);
    $("t-id").textContent = id;
    const ol = $("transcript"); ol.replaceChildren();
    let nearest = null, best = Infinity;
    for (const m of c.transcript) {
      const li = D.el("li", "msg " + m.sender);
      li.dataset.seq = String(m.seq);
      li.append(D.el("span", "who", (m.sender === "visitor" ? "访客" : m.sender === "agent" ? "人工" : "机器人") + " · " + D.when(m.created_at)),
        D.el("div", "bubble", m.text));
      ol.append(li);
      if (at) {
        const d = Math.abs(new Date(m.created_at) - new Date(at));
        if (d < best) { best = d; nearest = li; }
      }
    }
    if (nearest) {  // scrolled inside the transcript only, not the page
      nearest.classList.add("highlight");
      ol.scrollTop = Math.max(0, nearest.offsetTop - ol.offsetTop - ol.clientHeight / 2);
    }
  }

  async function refresh() {
    const q = "?since=" + encodeURIComponent(since());
    const [m, dist, agents, queue, quality] = await Promise.all([
      D.api("/api/supervisor/metrics" + q), D.api("/api/supervisor/distributions" + q),
      D.api("/api/supervisor/agents"), D.api("/api/agent/conversations?view=queue"),
      D.api("/api/supervisor/quality" + q),
    ]);
    renderCards(m); renderCharts(m, dist); renderAgents(agents); renderQueue(queue); renderQuality(quality);
  }

  $("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const a = await D.api("/api/supervisor/agents", {
        username: $("new-username").value, password: $("new-password").value,
        role: $("new-role").value, capacity: Number($("new-capacity").value),
      });
      $("create-result").className = "ok-text";
      $("create-result").textContent = "已创建 " + a.username;
      $("new-password").value = "";
      refresh().catch(() => {});
    } catch (e) { $("create-result").className = "error"; $("create-result").textContent = e.message; }
  });

  function enter() {
    $("login").hidden = true; $("board").hidden = false;
    $("me").textContent = D.auth.username;
    $("today").textContent = new Date().toLocaleDateString("zh-CN");
    refresh().catch(() => {});
    timer = setInterval(() => { if (D.auth) refresh().catch(() => {}); }, 10000);
  }

  if (D.auth && D.auth.role === "supervisor") enter();
})();
