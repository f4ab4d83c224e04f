/* Shared helpers of the monitoring pages: translated labels, JSON fetch with CSRF, toasts, and the
   live WebSocket (/ws/live/) that reconnects with backoff and asks the page to resync. */
(function () {
  "use strict";
  const i18nNode = document.getElementById("page-i18n");
  const I18N = i18nNode ? JSON.parse(i18nNode.textContent || "{}") || {} : {};
  function t(key) { return (I18N && I18N[key]) || key; }

  function csrf() {
    const m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  async function json(url, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers);
    if (opts.body && typeof opts.body !== "string") {
      opts.body = JSON.stringify(opts.body);
      opts.headers["Content-Type"] = "application/json";
    }
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRFToken"] = csrf();
    const res = await fetch(url, opts);
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (!res.ok) {
      const err = new Error((data && (data.detail || JSON.stringify(data))) || res.statusText);
      err.status = res.status; err.data = data; throw err;
    }
    return data;
  }

  function toast(text, kind) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const el = document.createElement("div");
    el.className = "toast " + (kind || "");
    el.textContent = text;
    box.appendChild(el);
    setTimeout(() => el.remove(), 6000);
  }

  /* One WebSocket per page. onBatch(items) gets the items the server let through; onOpen() is
     called after every (re)connection so the page can resync what it missed. */
  function live(onBatch, onOpen) {
    const status = document.getElementById("ws-status");
    let delay = 1000, socket = null, stopped = false;
    function setStatus(state) {
      if (status) { status.dataset.state = state; status.textContent = t(state); }
      document.body.dataset.ws = state;
    }
    function connect() {
      const proto = location.protocol === "https:" ? "wss" : "ws";
      socket = new WebSocket(proto + "://" + location.host + "/ws/live/");
      setStatus("connecting");
      socket.onopen = () => { delay = 1000; setStatus("connected"); if (onOpen) onOpen(); };
      socket.onmessage = (ev) => {
        let msg; try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === "batch" && Array.isArray(msg.items)) onBatch(msg.items);
        else if (msg.type && msg.type !== "pong") onBatch([msg]);
      };
      socket.onclose = () => {
        if (stopped) return;
        setStatus("reconnecting");
        setTimeout(connect, delay + Math.random() * 500);
        delay = Math.min(delay * 2, 30000);
      };
    }
    connect();
    setInterval(() => { if (socket && socket.readyState === 1) socket.send('{"type":"ping"}'); }, 25000);
    return { close() { stopped = true; if (socket) socket.close(); } };
  }

  function alarmBadge(delta) {
    const badge = document.getElementById("alarm-badge");
    if (!badge) return;
    const n = (parseInt(badge.textContent, 10) || 0) + delta;
    badge.textContent = String(n);
    badge.hidden = n <= 0;
  }

  window.Carloan = { t, json, toast, live, csrf, alarmBadge };
})();
