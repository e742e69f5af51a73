// Narrow screens show each table row as a stacked block ("Balance  1,250.00") instead of a
// table that scrolls sideways (app.css, table.stack). Each cell is labelled here with its
// column header, so the labels come from the page's own (translated) headers and no template
// repeats them. Without this script, tables keep scrolling inside their card.
"use strict";

document.querySelectorAll("main table").forEach((table) => {
  const head = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
  if (!head) return;
  const labels = [];
  for (const cell of head.cells) {
    for (let i = 0; i < cell.colSpan; i += 1) labels.push(cell.textContent.trim());
  }
  const sections = [...table.tBodies, table.tFoot].filter(Boolean);
  for (const section of sections) {
    for (const row of section.rows) {
      let column = 0;
      for (const cell of row.cells) {
        // A cell spanning columns (a total's caption, "No transactions yet") has no one header.
        if (cell.colSpan === 1 && labels[column]) cell.dataset.label = labels[column];
        column += cell.colSpan;
      }
    }
  }
  table.classList.add("stack");
});
