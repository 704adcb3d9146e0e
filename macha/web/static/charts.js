// The host page's charts: each figure names its series; the bucketed values of every figure's series come in one
// request (/api/v1/hosts/HOST/chart?name=a&name=b...) and are drawn with uPlot. A metrics entry on the live feed
// for this host redraws them.
(function () {
  "use strict";
  var box = document.querySelector(".charts");
  if (!box || !window.uPlot) return;
  var host = box.dataset.host, since = box.dataset.since, most = Number(box.dataset.maxSeries) || 32;
  var palette = ["#1f5f8b", "#b3261e", "#2e7d32", "#b26a00", "#6a1b9a", "#00838f", "#5d4037", "#455a64"];
  var figures = Array.prototype.slice.call(box.querySelectorAll("figure.chart"));

  function load(names) {
    var url = "/api/v1/hosts/" + encodeURIComponent(host) + "/chart?since=" + encodeURIComponent(since) +
      names.map(function (n) { return "&name=" + encodeURIComponent(n); }).join("");
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) { return r.ok ? r.json() : null; });
  }

  function draw(fig, byName) {
    var names = JSON.parse(fig.dataset.series);
    var all = names.map(function (n) { return byName[n]; });
    var times = {};
    all.forEach(function (s) { if (s) s.start.forEach(function (t) { times[Date.parse(t) / 1000] = 1; }); });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    var data = [xs];
    var series = [{}];
    all.forEach(function (s, i) {
      var byT = {};
      if (s) s.start.forEach(function (t, j) { byT[Date.parse(t) / 1000] = s.avg[j]; });
      data.push(xs.map(function (t) { return t in byT ? byT[t] : null; }));
      series.push({ label: names[i], stroke: palette[i % palette.length], width: 1.5, spanGaps: true });
    });
    var old = fig.querySelector(".uplot");
    if (old) old.remove();
    new uPlot({ width: Math.max(300, fig.clientWidth - 16), height: 200, series: series, axes: [{}, {}] },
              data, fig);
    fig.dataset.drawn = String(xs.length);
  }

  function drawAll() {
    var wanted = [];
    figures.forEach(function (fig) {
      JSON.parse(fig.dataset.series).forEach(function (n) { if (wanted.indexOf(n) < 0) wanted.push(n); });
    });
    if (!wanted.length) return;
    // One request, unless the page has more series than one request may name.
    var parts = [];
    for (var i = 0; i < wanted.length; i += most) parts.push(load(wanted.slice(i, i + most)));
    Promise.all(parts).then(function (charts) {
      var byName = {};
      charts.forEach(function (c) { if (c) c.series.forEach(function (s) { byName[s.name] = s; }); });
      figures.forEach(function (fig) { draw(fig, byName); });
    });
  }

  drawAll();
  document.body.addEventListener("macha-metrics", function (ev) {
    if (!ev.detail || !ev.detail.host || ev.detail.host === host) drawAll();
  });
})();
