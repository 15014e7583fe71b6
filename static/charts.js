// Bar charts drawn as inline SVG by the page itself (no library): one bar per study day,
// optionally with a part of it in a second colour (the reviews rated "again"). Each bar keeps
// its numbers in data attributes and says them in its <title> (a tooltip, and what a screen
// reader reads); the chart as a whole is an image labelled with its summary. Sizes are SVG
// attributes and colours come from classes in app.css: the page's CSP allows no inline style.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 600;
const HEIGHT = 180;
const TOP = 16; // room for the top value's label
const BOTTOM = 22; // room for the date labels
const LEFT = 28; // room for the scale

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  el.append(...children);
  return el;
}

/** "3 Mar" for an ISO date, read as a calendar day (no time zone shift). */
export function shortDate(iso) {
  const [year, month, day] = iso.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, day)).toLocaleDateString("en-GB", {
    day: "numeric",
    month: "short",
    timeZone: "UTC",
  });
}

/** A round upper end for the scale: 1, 2, 5, 10, 20, 50… at or above `max`. */
function scaleTop(max) {
  if (max <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * power).find((top) => top >= max);
}

/**
 * An SVG bar chart of `days` ([{date, …}]): `value(day)` is a bar's height, `part(day)` (if
 * given) the share of it drawn in the second colour, `describe(day)` the bar's title.
 */
export function barChart(days, { value, part = null, describe, label }) {
  const top = scaleTop(Math.max(0, ...days.map(value)));
  const plot = HEIGHT - TOP - BOTTOM;
  const step = (WIDTH - LEFT) / Math.max(days.length, 1);
  const gap = Math.min(2, step / 4);
  const y = (n) => TOP + plot - (n / top) * plot;
  const chart = svg("svg", {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: "img",
    "aria-label": label,
    class: "bars",
  });
  chart.append(
    svg("line", { x1: LEFT, x2: WIDTH, y1: y(0), y2: y(0), class: "axis" }),
    svg("line", { x1: LEFT, x2: WIDTH, y1: y(top), y2: y(top), class: "grid" }),
    svg("text", { x: LEFT - 4, y: y(top) + 4, class: "scale", "text-anchor": "end" }, String(top)),
    svg("text", { x: LEFT - 4, y: y(0) + 4, class: "scale", "text-anchor": "end" }, "0"),
  );
  days.forEach((day, index) => {
    const n = value(day);
    const x = LEFT + index * step + gap / 2;
    const width = Math.max(step - gap, 1);
    const group = svg("g", { class: "day", "data-date": day.date, "data-value": n });
    group.append(svg("title", {}, describe(day)));
    group.append(svg("rect", { x, width, y: y(n), height: y(0) - y(n), class: "bar" }));
    if (part) {
      const m = part(day);
      group.dataset.part = String(m);
      group.append(svg("rect", { x, width, y: y(m), height: y(0) - y(m), class: "bar part" }));
    }
    chart.append(group);
  });
  // The first, middle and last dates under the bars.
  const marks = [...new Set([0, Math.floor((days.length - 1) / 2), days.length - 1])];
  for (const index of days.length ? marks : []) {
    const x = LEFT + index * step + step / 2;
    const anchor = index === 0 ? "start" : index === days.length - 1 ? "end" : "middle";
    const at = index === 0 ? LEFT : index === days.length - 1 ? WIDTH : x;
    chart.append(
      svg("text", { x: at, y: HEIGHT - 6, class: "date", "text-anchor": anchor },
        shortDate(days[index].date)),
    );
  }
  return chart;
}
