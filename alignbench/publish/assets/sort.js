// alignbench leaderboards: click a column header to sort a table by it (again to reverse).
// Written for this site (MIT, as alignbench); no dependencies, nothing loaded. Without JavaScript
// the tables read the same, in their published order.
(function () {
  "use strict";
  // A cell's sort key: its data-sort attribute; numbers compare as numbers, empty (n/a) sorts last.
  function key(row, column) {
    var cell = row.children[column];
    var value = cell ? cell.getAttribute("data-sort") : "";
    if (value === null || value === "") return null;
    var number = Number(value);
    return isNaN(number) ? value : number;
  }
  function compare(a, b, descending) {
    if (a === null && b === null) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    var order = typeof a === "number" && typeof b === "number" ? a - b : String(a).localeCompare(String(b));
    return descending ? -order : order;
  }
  function sortBy(table, column, header) {
    var descending = header.getAttribute("aria-sort") === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var indexed = rows.map(function (row, i) { return { row: row, key: key(row, column), i: i }; });
    indexed.sort(function (x, y) { return compare(x.key, y.key, descending) || x.i - y.i; });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
    indexed.forEach(function (entry) { body.appendChild(entry.row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = header.textContent;
      button.title = "sort by " + header.textContent;
      header.textContent = "";
      header.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, column, header); });
    });
  });
})();
