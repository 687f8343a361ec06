// Sortable tables for the CoViP leaderboard: plain JavaScript, no dependencies, nothing fetched.
// A table with class "sortable" gets a button in each header; clicking it sorts every tbody of the
// table on its own (so rows marked "reported" never mix with computed rows), by each cell's
// data-v attribute (numeric when it parses, else text); empty values always sort last.
// A form with class "filter" (hidden until this script shows it) sets body[data-show] to the chosen radio
// value; the stylesheet hides the samples and question rows that do not match, and the form counts what is shown.
"use strict";

function cellValue(row, index) {
  const cell = row.cells[index];
  if (!cell) return null;
  const raw = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent.trim();
  if (raw === "") return null;
  const number = Number(raw);
  return Number.isFinite(number) ? number : raw.toLowerCase();
}

function compare(a, b, direction) {
  if (a === null && b === null) return 0;
  if (a === null) return 1;
  if (b === null) return -1;
  if (typeof a === "number" && typeof b === "number") return direction * (a - b);
  return direction * String(a).localeCompare(String(b));
}

function sortTable(table, index, header) {
  const descending = header.getAttribute("aria-sort") !== "descending";
  const direction = descending ? -1 : 1;
  for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  for (const body of table.tBodies) {
    const rows = Array.from(body.rows);
    rows.sort((r1, r2) => compare(cellValue(r1, index), cellValue(r2, index), direction));
    for (const row of rows) body.appendChild(row);
  }
}

function makeSortable(table) {
  if (!table.tHead) return;
  Array.from(table.tHead.rows[0].cells).forEach((header, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    while (header.firstChild) button.appendChild(header.firstChild);
    header.appendChild(button);
    button.addEventListener("click", () => sortTable(table, index, header));
  });
}

function setupFilter(form) {
  const samples = document.querySelectorAll("section.sample");
  const output = form.querySelector("output");
  const update = () => {
    document.body.dataset.show = form.querySelector("input[name=show]:checked").value;
    const shown = Array.from(samples).filter((s) => s.getClientRects().length > 0).length;
    output.textContent = `${shown} of ${samples.length} samples shown`;
  };
  form.hidden = false;
  form.addEventListener("change", update);
  update();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("table.sortable").forEach(makeSortable);
  document.querySelectorAll("form.filter").forEach(setupFilter);
});
