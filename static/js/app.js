/* Small progressive enhancements of the shell (the pages work without them). */
(function () {
  "use strict";
  // On a phone a list table (table.stack) shows each row as a card: every cell names its column
  // (CSS prints data-label before the value), so nothing scrolls sideways or hides at the edge.
  function labelTables(root) {
    (root || document).querySelectorAll("table.stack").forEach(function (table) {
      var heads = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return (th.getAttribute("data-label") || th.textContent).replace(/[▲▼]/g, "").replace(/\s+/g, " ").trim();
      });
      table.querySelectorAll("tbody tr").forEach(function (tr) {
        var column = 0;
        Array.prototype.forEach.call(tr.children, function (cell) {
          if (!cell.hasAttribute("data-label")) cell.setAttribute("data-label", heads[column] || "");
          column += cell.colSpan || 1;
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { labelTables(document); });
  document.addEventListener("htmx:afterSettle", function (event) { labelTables(event.target); });
})();
