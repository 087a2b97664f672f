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

  // Narrow screens (the CSS shows the button at 800 px and less): the sidebar is a drawer.
  // The button says whether it is open (aria-expanded); opening moves focus to the first link,
  // Escape or a click beside it closes it and gives focus back to the button.
  var toggle = document.querySelector("[data-toggle=sidebar]");
  var sidebar = document.getElementById("sidebar");
  if (toggle && sidebar) {
    var setOpen = function (open, refocus) {
      document.body.classList.toggle("sidebar-open", open);
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) {
        var first = sidebar.querySelector("a[href]");
        // Focus once the drawer is visible (visibility flips at the start of the transition).
        if (first) window.requestAnimationFrame(function () { first.focus(); });
      } else if (refocus) {
        toggle.focus();
      }
    };
    var isOpen = function () { return document.body.classList.contains("sidebar-open"); };
    toggle.addEventListener("click", function (event) {
      event.stopPropagation();
      setOpen(!isOpen(), false);
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && isOpen()) setOpen(false, true);
    });
    document.addEventListener("click", function (event) {
      if (isOpen() && !sidebar.contains(event.target)) setOpen(false, false);
    });
    // Back to a wide window: the drawer state no longer applies.
    var wide = window.matchMedia("(min-width: 801px)");
    var onWide = function () { if (wide.matches && isOpen()) setOpen(false, false); };
    if (wide.addEventListener) wide.addEventListener("change", onWide);
  }

  // A box that scrolls sideways (a wide table on a phone) must be reachable by the keyboard to
  // be scrolled: give it a tab stop and a name when nothing inside it can take focus.
  var focusable = "a[href], button, input, select, textarea, [tabindex]";
  var markScrollers = function () {
    document.querySelectorAll(".table-card, .card > .table, .diff, pre, .comparison").forEach(
      function (box) {
        var scrolls = box.scrollWidth > box.clientWidth + 1 || box.scrollHeight > box.clientHeight + 1;
        var overflow = window.getComputedStyle(box);
        var canScroll = /(auto|scroll)/.test(overflow.overflowX + " " + overflow.overflowY);
        if (scrolls && canScroll && !box.querySelector(focusable)) {
          if (!box.hasAttribute("tabindex")) {
            box.setAttribute("tabindex", "0");
            box.setAttribute("data-scroll-stop", "");
          }
          if (!box.hasAttribute("aria-label") && !box.hasAttribute("role")) {
            var head = box.querySelector("h2, caption") ||
              (box.closest(".card") && box.closest(".card").querySelector("h2"));
            box.setAttribute("role", "region");
            box.setAttribute("aria-label", head ? head.textContent.trim() : "Scrollable content");
          }
        } else if (box.hasAttribute("data-scroll-stop")) {
          box.removeAttribute("tabindex");
          box.removeAttribute("data-scroll-stop");
        }
      }
    );
  };
  markScrollers();
  var resizeTimer = 0;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(markScrollers, 150);
  });
})();
