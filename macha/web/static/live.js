// One WebSocket per session: live entries refresh the parts of the page that show them (htmx elements listening
// for "macha-<kind>"), and the last sequence seen is kept so that a reconnect resumes where it left off.
(function () {
  "use strict";
  var state = document.getElementById("live-state");
  var key = "macha-live-seq";
  var delay = 1000;
  function mark(on, title) {
    if (!state) return;
    state.textContent = on ? "●" : "○";
    state.className = on ? "live on" : "live";
    state.title = title;
  }
  function fire(kind, detail) {
    document.body.dispatchEvent(new CustomEvent("macha-" + kind, { detail: detail }));
  }
  var socket = null;
  var watching = [];
  function connect() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(scheme + location.host + "/ws");
    socket = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ after: sessionStorage.getItem(key) }));
      watching.forEach(function (id) {
        // Read again from the stream's start: what was shown of the answer is replaced, not doubled.
        document.body.dispatchEvent(new CustomEvent("macha-chat-reset", { detail: { message_id: id } }));
        ws.send(JSON.stringify({ type: "chat", message_id: id }));
      });
    };
    ws.onmessage = function (msg) {
      var m = JSON.parse(msg.data);
      if (m.type === "hello") {
        mark(true, "live updates on");
        delay = 1000;
        if (m.seq) sessionStorage.setItem(key, m.seq);
      } else if (m.type === "entry") {
        sessionStorage.setItem(key, m.seq);
        fire(m.kind, m.data);
      } else if (m.type === "chat") {
        document.body.dispatchEvent(new CustomEvent("macha-chat-token", { detail: m }));
        if (m.kind === "done" || m.kind === "error") watching = watching.filter(function (i) { return i !== m.message_id; });
      } else if (m.type === "resync") {
        // Something may have been missed: every live part of the page reloads from the database.
        if (m.seq) sessionStorage.setItem(key, m.seq);
        ["events", "review", "analysis", "approval", "action", "metrics"].forEach(function (k) { fire(k, {}); });
      }
    };
    ws.onclose = function (ev) {
      mark(false, "live updates off: reconnecting");
      if (ev.code === 4403 || ev.code === 4409) return;  // logged out, or this session's socket moved to another tab
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }
  document.body.addEventListener("htmx:configRequest", function (ev) {
    var csrf = document.body.dataset.csrf;
    if (csrf) ev.detail.headers["X-CSRF-Token"] = csrf;
  });
  connect();
  window.machaLive = {
    fire: fire,
    // Stream a chat answer (sent again after a reconnect: the stream is read from its start, nothing is lost).
    watchChat: function (id) {
      watching.push(id);
      if (socket && socket.readyState === 1) socket.send(JSON.stringify({ type: "chat", message_id: id }));
    },
  };
})();
