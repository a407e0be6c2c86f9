// kefu's website widget. A shop adds one tag to any page:
//   <script src="https://DESK/widget.js" async></script>
// Options (data- attributes on that tag): data-position="right|left", data-color="#2f6fde",
// data-topic="<FAQ topic>" (answered right after the greeting), data-lang (else the
// page's <html lang>). The chat runs in an iframe from the desk's origin; the desk lets
// only the origins in KEFU_ALLOWED_ORIGINS frame it (CSP frame-ancestors) and answers
// this page's Origin check (/widget/config) only for them: elsewhere nothing is drawn.
(function () {
  "use strict";
  if (window.__kefuWidget) return;  // the tag twice on one page: one launcher
  window.__kefuWidget = true;
  const script = document.currentScript ||
    Array.prototype.find.call(document.scripts, (s) => /\/widget\.js(\?|$)/.test(s.src));
  if (!script) return;
  const desk = new URL(script.src).origin;
  const data = script.dataset;
  const side = data.position === "left" ? "left" : "right";
  const color = /^#[0-9a-fA-F]{3,8}$/.test(data.color || "") ? data.color : "#2f6fde";
  const lang = (data.lang || document.documentElement.lang || navigator.language || "zh-CN").trim();
  const traditional = /^zh-(tw|hk|mo|hant)/i.test(lang);
  const OPEN = "kefu.widget.open";

  function styled(el, css) { Object.assign(el.style, css); return el; }

  function draw() {
    const launcher = styled(document.createElement("button"), {
      position: "fixed", bottom: "20px", [side]: "20px", zIndex: "2147483000",
      padding: "12px 18px", border: "0", borderRadius: "24px", background: color, color: "#fff",
      font: "15px/1 -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif",
      boxShadow: "0 4px 14px rgba(0,0,0,.2)", cursor: "pointer",
    });
    launcher.type = "button";
    launcher.setAttribute("data-kefu-launcher", "");
    launcher.setAttribute("aria-expanded", "false");
    launcher.textContent = traditional ? "線上客服" : "在线客服";
    let frame = null;

    function open() {
      if (!frame) {
        const params = new URLSearchParams({ lang: lang, host: location.origin, color: color });
        if (data.topic) params.set("topic", data.topic);
        frame = styled(document.createElement("iframe"), {
          position: "fixed", bottom: "76px", [side]: "20px", zIndex: "2147483000",
          width: "min(380px, calc(100vw - 40px))", height: "min(600px, calc(100vh - 100px))",
          border: "0", borderRadius: "12px", boxShadow: "0 8px 30px rgba(0,0,0,.25)",
          background: "#fff",
        });
        frame.src = desk + "/widget?" + params.toString();
        frame.title = launcher.textContent;
        frame.setAttribute("data-kefu-frame", "");
        document.body.appendChild(frame);
      }
      frame.style.display = "block";
      launcher.setAttribute("aria-expanded", "true");
      try { sessionStorage.setItem(OPEN, "1"); } catch (e) { /* storage off: fine */ }
    }

    function close() {
      if (frame) frame.style.display = "none";
      launcher.setAttribute("aria-expanded", "false");
      try { sessionStorage.removeItem(OPEN); } catch (e) { /* storage off: fine */ }
    }

    launcher.addEventListener("click", () => {
      if (frame && frame.style.display !== "none") close(); else open();
    });
    document.body.appendChild(launcher);
    let reopen = false;
    try { reopen = sessionStorage.getItem(OPEN) === "1"; } catch (e) { /* storage off */ }
    if (reopen) open();  // open on the last page: open on this one too
  }

  // The desk answers this page's origin only if it may embed the chat (CORS: others
  // cannot even read the answer), so a page elsewhere draws nothing.
  fetch(desk + "/widget/config", { mode: "cors", credentials: "omit" })
    .then((res) => (res.ok ? res.json() : Promise.reject(new Error("HTTP " + res.status))))
    .then((config) => {
      if (!config.allowed) return;
      if (document.body) draw(); else document.addEventListener("DOMContentLoaded", draw);
    })
    .catch((e) => { if (window.console) console.warn("kefu widget: not allowed on this site (" + e.message + ")"); });
})();
