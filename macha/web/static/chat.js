// The chat page: a question is posted to the API (with the CSRF token), then its answer's tokens arrive over this
// session's WebSocket and are shown as text (never as HTML: the model's words are data) as they are written.
(function () {
  "use strict";
  var box = document.getElementById("conversation");
  var form = document.getElementById("ask");
  var conversation = null;
  var answers = {};
  function bubble(cls, text) {
    var p = document.createElement("div");
    p.className = "msg " + cls;
    p.textContent = text;
    box.appendChild(p);
    return p;
  }
  document.body.addEventListener("macha-chat-token", function (ev) {
    var m = ev.detail, el = answers[m.message_id];
    if (!el) return;
    if (m.kind === "token") el.textContent += m.text;
    else if (m.kind === "tool") bubble("tool", "[tool] " + m.text);
    else if (m.kind === "error") { el.classList.add("failed"); el.textContent += "\n" + m.text; el.dataset.done = "error"; }
    else if (m.kind === "done") { el.dataset.done = "done"; }
  });
  document.body.addEventListener("macha-chat-reset", function (ev) {
    var el = answers[ev.detail.message_id];
    if (el) el.textContent = "";
  });
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var q = document.getElementById("question");
    var text = q.value.trim();
    if (!text) return;
    bubble("user", text);
    q.value = "";
    var body = { question: text };
    if (conversation) body.conversation_id = conversation;
    else if (box.dataset.approval) body.approval_id = Number(box.dataset.approval);
    else body.host = box.dataset.host;
    fetch("/api/v1/chat", { method: "POST", headers: { "Content-Type": "application/json",
      "X-CSRF-Token": document.body.dataset.csrf, Accept: "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        if (!res[0]) { bubble("failed", res[1].error || "the question was not taken"); return; }
        conversation = res[1].conversation_id;
        var el = bubble("answer", "");
        el.id = "answer-" + res[1].message_id;
        answers[res[1].message_id] = el;
        window.machaLive.watchChat(res[1].message_id);
      });
  });
})();
