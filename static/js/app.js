// Small progressive enhancements for every page. No inline scripts: the CSP forbids them.
(function () {
  "use strict";

  // <select data-autosubmit>: submit its form on change (project switcher, queue filters).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () {
      if (select.form) select.form.submit();
    });
  });

  // <form data-confirm="...">: ask before destructive actions.
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // <button data-copy="#id">: copy the text of an element.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (!target) return;
      var text = target.textContent || "";
      var done = function () {
        var label = button.textContent;
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(done, function () {});
      } else {
        var range = document.createRange();
        range.selectNodeContents(target);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        try { document.execCommand("copy"); done(); } catch (e) { /* leave it selected */ }
      }
    });
  });

  // Trace waterfall: fold a span's subtree (rows whose data-path starts with its path + ".").
  document.querySelectorAll("[data-waterfall]").forEach(function (list) {
    var rows = Array.prototype.slice.call(list.querySelectorAll("[data-path]"));
    list.addEventListener("click", function (event) {
      var button = event.target.closest("[data-fold]");
      if (!button) return;
      var prefix = button.getAttribute("data-fold") + ".";
      var open = button.getAttribute("aria-expanded") !== "false";
      button.setAttribute("aria-expanded", open ? "false" : "true");
      button.textContent = open ? "\u25b8" : "\u25be";
      rows.forEach(function (row) {
        var path = row.getAttribute("data-path");
        if (path.indexOf(prefix) !== 0) return;
        if (open) {
          row.hidden = true;
        } else {
          // Unfold one level of state: rows under a still-folded child stay hidden.
          var hiddenBy = rows.some(function (other) {
            var b = other.querySelector("[data-fold]");
            var p = other.getAttribute("data-path");
            return b && b.getAttribute("aria-expanded") === "false" && p !== prefix.slice(0, -1) &&
              path.indexOf(p + ".") === 0 && p.indexOf(prefix) === 0;
          });
          row.hidden = hiddenBy;
        }
      });
    });
  });

  // Narrow screens: the sidebar becomes a drawer.
  document.querySelectorAll("[data-toggle=sidebar]").forEach(function (button) {
    button.addEventListener("click", function () {
      document.body.classList.toggle("sidebar-open");
    });
  });
})();
