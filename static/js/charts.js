// Renders every plotly figure of the page from its JSON data island:
//   <div class="chart" data-chart="ID"></div>
//   <script type="application/json" id="ID">{"data": [...], "layout": {...}}</script>
// The figure JSON is built server-side (apps/dashboard/charts.py) with user text escaped.
(function () {
  "use strict";
  if (typeof window.Plotly === "undefined") return;
  var config = { displayModeBar: false, responsive: true, displaylogo: false };

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var island = document.getElementById(el.getAttribute("data-chart"));
    if (!island) return;
    var figure;
    try {
      figure = JSON.parse(island.textContent || "{}");
    } catch (e) {
      el.textContent = "This chart could not be read.";
      return;
    }
    var hasData = (figure.data || []).some(function (trace) {
      var values = trace.y || trace.x || [];
      return values.some(function (v) { return v !== null && v !== 0; });
    });
    el.innerHTML = "";
    if (!hasData) {
      el.classList.add("chart-empty");
      var note = document.createElement("div");
      note.className = "muted small chart-empty-note";
      note.textContent = "No data in this range.";
      el.appendChild(note);
    }
    window.Plotly.newPlot(el, figure.data || [], figure.layout || {}, config);
  });
})();
