// Miaodai console: small improvements over pages that work without JavaScript.
"use strict";

// A form that moves money or changes an account is sent once: a second submit is ignored. (Its buttons are not
// disabled: a disabled button's name and value would not be sent with the form.)
document.querySelectorAll("form[method=post]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    form.querySelectorAll("button").forEach((button) => { button.setAttribute("aria-busy", "true"); });
  });
});

// Dashboards: each .chart holds its Apache ECharts option as JSON, built on the server from the SQL aggregates.
if (window.echarts) {
  const charts = [];
  document.querySelectorAll(".chart[data-option]").forEach((element) => {
    const chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(JSON.parse(element.dataset.option));
    element.dataset.drawn = "1";
    charts.push(chart);
  });
  window.addEventListener("resize", () => charts.forEach((chart) => chart.resize()));
}
