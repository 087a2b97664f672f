// Click-through from a chart point to the calls behind it. A trace's customdata holds, per point,
// the calls explorer's query string (built server-side in apps/dashboard/charts.py from the
// bucket's time range and the series' filter); a click opens /calls/?<query>. Loaded after
// charts.js, which has drawn every [data-chart] element.
(function () {
  "use strict";
  var target = document.body.getAttribute("data-calls-url") || "/calls/";
  document.querySelectorAll("[data-chart]").forEach(function (el) {
    if (typeof el.on !== "function") return;
    el.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      var query = point && point.customdata;
      if (typeof query !== "string" || !query) return;
      window.location.assign(target + "?" + query);
    });
    el.classList.add("chart-clickable");
  });
})();
