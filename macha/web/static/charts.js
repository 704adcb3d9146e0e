// The host page's charts: each figure names its series; their bucketed values come from /api/v1/metrics and are
// drawn with uPlot. A metrics entry on the live feed for this host redraws them.
(function () {
  "use strict";
  var box = document.querySelector(".charts");
  if (!box || !window.uPlot) return;
  var host = box.dataset.host, since = box.dataset.since;
  var palette = ["#1f5f8b", "#b3261e", "#2e7d32", "#b26a00", "#6a1b9a", "#00838f", "#5d4037", "#455a64"];

  function load(name) {
    var url = "/api/v1/metrics?host=" + encodeURIComponent(host) + "&name=" + encodeURIComponent(name) +
      "&since=" + encodeURIComponent(since);
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) { return r.ok ? r.json() : null; });
  }

  function draw(fig) {
    var names = JSON.parse(fig.dataset.series);
    Promise.all(names.map(load)).then(function (all) {
      var times = {};
      all.forEach(function (s) { if (s) s.points.forEach(function (p) { times[Date.parse(p.start) / 1000] = 1; }); });
      var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
      var data = [xs];
      var series = [{}];
      all.forEach(function (s, i) {
        var byT = {};
        if (s) s.points.forEach(function (p) { byT[Date.parse(p.start) / 1000] = p.avg; });
        data.push(xs.map(function (t) { return t in byT ? byT[t] : null; }));
        series.push({ label: names[i], stroke: palette[i % palette.length], width: 1.5, spanGaps: true });
      });
      var old = fig.querySelector(".uplot");
      if (old) old.remove();
      new uPlot({ width: Math.max(300, fig.clientWidth - 16), height: 200, series: series, axes: [{}, {}] },
                data, fig);
      fig.dataset.drawn = String(xs.length);
    });
  }

  var figures = Array.prototype.slice.call(box.querySelectorAll("figure.chart"));
  figures.forEach(draw);
  document.body.addEventListener("macha-metrics", function (ev) {
    if (!ev.detail || !ev.detail.host || ev.detail.host === host) figures.forEach(draw);
  });
})();
