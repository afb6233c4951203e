// Draws the page's chart specs (pages/spec.py) with uPlot: one shared time axis per group of charts, the
// incident's marks (labelled) on every chart, a cursor synchronised across a group, sizes that follow the page.
(function () {
  "use strict";
  // Rows of mark labels above a chart: more on a narrow screen, where the marks stand closer together.
  var ROWS = window.innerWidth < 700 ? 5 : 3, ROW_PX = 14, TIMELINE_PX = 70, Y_AXIS_PX = 72;
  var KINDS = {incident: "#b00020", detected: "#0072B2", action: "#E69F00", cleared: "#6a3d9a",
               recovered: "#009E73", check: "#333333", right: "#009E73", wrong: "#D55E00", tool: "#7f7f7f"};
  var page = JSON.parse(document.getElementById("chart-data").textContent);
  var plots = [];

  function trim(v) { return String(+v.toPrecision(3)); }

  // 1510 -> "1.51k", 0.25 -> "0.25", 2000000 -> "2M": never "1.51e+03".
  function number(v) {
    if (v === null || v === undefined) return "--";
    var a = Math.abs(v);
    if (a >= 1e6) return trim(v / 1e6) + "M";
    if (a >= 1e4) return trim(v / 1e3) + "k";
    return a >= 1000 ? String(Math.round(v)) : trim(v);
  }

  // A group with an origin counts seconds from it (ticks at round seconds since the injection); else UTC times.
  function x(group, t) { return group.origin === null ? t : t - group.origin; }

  function clock(group, t) {
    if (group.origin !== null) return number(Math.round(t * 10) / 10) + " s";
    return new Date(t * 1000).toISOString().slice(11, 19);
  }

  // The label cut to `room` pixels, with an ellipsis.
  function fit(ctx, label, room) {
    if (ctx.measureText(label).width <= room) return label;
    while (label.length > 1 && ctx.measureText(label + "\u2026").width > room) label = label.slice(0, -1);
    return label + "\u2026";
  }

  function marksPlugin(spec, group) {
    function draw(u) {
      var ctx = u.ctx, dpr = uPlot.pxRatio, b = u.bbox, rows = [], drawn = [];
      ctx.save();
      ctx.font = 11 * dpr + "px system-ui, sans-serif";
      ctx.textBaseline = "bottom";
      var ordered = spec.marks.filter(function (m) { return !m.minor; })
        .concat(spec.marks.filter(function (m) { return m.minor; }));  // ticks on top of the dashed lines
      ordered.forEach(function (m) {
        var x = Math.round(u.valToPos(m.at - (group.origin || 0), "x", true));
        if (x < b.left - 1 || x > b.left + b.width + 1) return;
        ctx.strokeStyle = ctx.fillStyle = KINDS[m.kind] || "#333333";
        ctx.lineWidth = (m.minor ? 1.5 : 2) * dpr;
        ctx.setLineDash(m.minor ? [] : [6 * dpr, 3 * dpr]);
        ctx.beginPath();
        var from = m.minor && !spec.timeline ? b.top + b.height - 8 * dpr : b.top;
        ctx.moveTo(x, from);
        ctx.lineTo(x, b.top + b.height);
        ctx.stroke();
        if (m.minor) return;
        var label = fit(ctx, m.label, b.width), w = ctx.measureText(label).width, lx = Math.max(b.left, Math.min(x + 3 * dpr, b.left + b.width - w));
        var row = 0;
        while (row < rows.length && rows[row] > lx) row++;
        if (row >= ROWS) return;  // too crowded here: the page's list of events has it
        rows[row] = lx + w + 12 * dpr;
        ctx.fillText(label, lx, b.top - 3 * dpr - row * ROW_PX * dpr);
        drawn.push(m.label);
      });
      ctx.restore();
      u.root.closest("figure").setAttribute("data-marks", drawn.join("|"));
    }
    return {hooks: {draw: draw}};
  }

  function options(spec, group, width) {
    var unit = spec.unit ? " " + spec.unit : "";
    var series = [{label: group.origin !== null ? "since injection" : "time (UTC)",
                   value: function (u, t) { return t === null ? "--" : clock(group, t); }}];
    spec.series.forEach(function (s) {
      series.push({label: s.label, stroke: s.colour, width: s.width, dash: s.dash, spanGaps: true,
                   points: {size: 4 + s.width, stroke: s.colour, fill: "#fff"},
                   value: function (u, v) { return v === null ? "--" : number(v) + unit; }});
    });
    var top = spec.range[1];
    return {
      width: width, height: spec.timeline ? TIMELINE_PX + ROWS * ROW_PX + 40 : spec.height,
      // The timeline has no y axis: its padding puts its plot where the charts below it have theirs.
      padding: [ROWS * ROW_PX + 6, 36, 0, spec.timeline ? Y_AXIS_PX : 0],
      legend: {show: spec.series.length > 0},
      cursor: {sync: {key: spec.group}, drag: {x: false, y: false}},
      tzDate: function (t) { return uPlot.tzDate(new Date(t * 1000), "Etc/UTC"); },
      scales: {
        x: {time: group.origin === null,
            range: function () { return group.span.map(function (t) { return x(group, t); }); }},
        y: {range: function (u, min, max) {
          return [spec.range[0], top !== null ? Math.max(top, max || 0) : (max > 0 ? max * 1.1 : 1)];
        }}
      },
      axes: [
        {label: group.axis, labelSize: 20, stroke: "#333", grid: {stroke: "#e4e4e4"},
         values: function (u, splits) { return splits.map(function (t) { return clock(group, t); }); }},
        {show: !spec.timeline, label: spec.unit, labelSize: 20, size: Y_AXIS_PX - 20, stroke: "#333", grid: {stroke: "#e4e4e4"},
         values: function (u, splits) { return splits.map(number); }}
      ],
      series: series,
      plugins: [marksPlugin(spec, group)]
    };
  }

  function data(spec, group) {
    if (!spec.series.length) return [group.span.map(function (t) { return x(group, t); })];  // the axis and marks
    return [spec.data[0].map(function (t) { return x(group, t); })].concat(spec.data.slice(1));
  }

  function widthOf(figure) { return Math.max(260, figure.querySelector(".plot").clientWidth); }

  Object.keys(page.charts).forEach(function (id) {
    var spec = page.charts[id], group = page.groups[spec.group], figure = document.getElementById(id);
    var plot = new uPlot(options(spec, group, widthOf(figure)), data(spec, group), figure.querySelector(".plot"));
    plots.push([plot, figure]);
  });

  function resize() {
    plots.forEach(function (p) { p[0].setSize({width: widthOf(p[1]), height: p[0].height}); });
  }
  var pending = null;
  window.addEventListener("resize", function () { clearTimeout(pending); pending = setTimeout(resize, 100); });
  window.addEventListener("beforeprint", resize);
  document.body.setAttribute("data-charts-drawn", String(plots.length));
})();
