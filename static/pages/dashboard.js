/* Home dashboard charts (ECharts, vendored). */
(function () {
  "use strict";
  const { t } = window.Carloan;
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  function chart(id, option) { const el = document.getElementById(id); if (el) echarts.init(el).setOption(option); }
  chart("chart-alarms", {
    tooltip: {}, grid: { left: 120, right: 20, top: 10, bottom: 20 },
    xAxis: { type: "value" }, yAxis: { type: "category", data: data.alarms_today.map((a) => a.kind) },
    series: [{ type: "bar", data: data.alarms_today.map((a) => a.n), itemStyle: { color: "#d73027" } }],
  });
  const stateColors = { moving: "#1a9850", parked: "#2166ac", sleeping: "#8073ac", offline: "#878787", alarm: "#d73027" };
  chart("chart-states", {
    tooltip: {}, series: [{ type: "pie", radius: ["40%", "70%"],
      data: Object.entries(data.states).map(([k, n]) => ({ name: t(k), value: n, itemStyle: { color: stateColors[k] } })) }],
  });
  const levels = { 1: t("info"), 2: t("warning"), 3: t("critical") };
  chart("chart-levels", {
    tooltip: {}, xAxis: { type: "category", data: Object.values(levels) }, yAxis: { type: "value" },
    series: [{ type: "bar", data: Object.keys(levels).map((k) => data.open_by_level[k] || 0), itemStyle: { color: "#fc8d59" } }],
  });
  chart("chart-inventory", {
    tooltip: {}, series: [{ type: "pie", radius: "65%", data: data.inventory.map((r) => ({ name: r.status, value: r.n })) }],
  });
})();
