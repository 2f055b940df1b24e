// Live parts of the dashboard: the overview re-renders on each server-sent overview event,
// a job page follows its job's status/progress/output stream. No inline scripts (CSP).
(function () {
  "use strict";

  var ov = document.getElementById("overview");
  if (ov && window.EventSource) {
    var es = new EventSource(ov.dataset.stream);
    es.addEventListener("overview", function () {
      fetch(ov.dataset.partial, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { ov.innerHTML = html; ov.dataset.updated = Date.now(); } });
    });
  }

  var job = document.getElementById("job");
  if (job && window.EventSource) {
    var src = new EventSource(job.dataset.stream);
    src.addEventListener("job", function (ev) {
      var s = JSON.parse(ev.data);
      var st = document.getElementById("job-status");
      if (st) { st.textContent = s.status; st.className = "badge status-" + s.status; }
      var p = document.getElementById("job-progress");
      var bar = document.getElementById("job-progress-bar");
      if (s.progress !== null && s.progress !== undefined) {
        if (p) { p.textContent = s.progress + "%"; }
        if (bar) { bar.value = s.progress; }
      }
      var out = document.getElementById("job-output");
      if (out) { out.textContent = JSON.stringify(s.output, null, 2); }
      job.dataset.status = s.status;
      // The server ends the stream after a terminal status; stop EventSource reconnecting.
      if (["completed", "failed", "cancelled"].indexOf(s.status) >= 0) { src.close(); }
    });
    src.addEventListener("gone", function () { src.close(); });
  }
})();
