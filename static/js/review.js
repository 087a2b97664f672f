// Review queue keyboard flow: 1/0 good/bad, j/k next/previous, l labels, c comment,
// Enter save (Ctrl/Cmd+Enter inside the comment), Esc leaves a field.
(function () {
  "use strict";
  var root = document.querySelector("[data-review]");
  if (!root) return;
  var items = Array.prototype.slice.call(root.querySelectorAll(".review-item"));
  var links = Array.prototype.slice.call(root.querySelectorAll(".queue-link"));
  if (!items.length) return;
  var current = 0;
  root.classList.add("js-one-at-a-time");

  function show(index) {
    current = Math.max(0, Math.min(items.length - 1, index));
    items.forEach(function (item, i) { item.hidden = i !== current; });
    links.forEach(function (link, i) {
      link.classList.toggle("active", i === current);
      if (i === current) link.setAttribute("aria-current", "true");
      else link.removeAttribute("aria-current");
    });
    if (links[current]) links[current].scrollIntoView({ block: "nearest" });
  }

  function form() { return items[current].querySelector("form.label-form"); }

  function setScore(value) {
    var input = form().querySelector('input[name=score][value="' + value + '"]');
    if (input) {
      input.checked = true;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  }

  function submit() {
    var f = form();
    if (!f.querySelector("input[name=score]:checked")) {
      f.querySelector("fieldset.score").classList.add("needs-score");
      return;
    }
    if (typeof f.requestSubmit === "function") f.requestSubmit();
    else f.submit();
  }

  links.forEach(function (link, i) {
    link.addEventListener("click", function (event) { event.preventDefault(); show(i); });
  });

  root.querySelectorAll(".chip[data-label]").forEach(function (chip) {
    chip.addEventListener("click", function () {
      var input = chip.closest("form").querySelector(".js-labels");
      var parts = input.value.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
      var label = chip.getAttribute("data-label");
      if (parts.indexOf(label) === -1) parts.push(label);
      input.value = parts.join(", ");
      chip.classList.add("on");
    });
  });

  root.querySelectorAll("form.label-form").forEach(function (f) {
    f.addEventListener("change", function () {
      f.querySelector("fieldset.score").classList.remove("needs-score");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.isComposing) return;
    var target = event.target;
    var typing = target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" && target.type === "text" || target.tagName === "SELECT");
    if (typing) {
      if (event.key === "Escape") { target.blur(); event.preventDefault(); }
      else if (event.key === "Enter" && target.tagName === "TEXTAREA" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault(); submit();
      } else if (event.key === "Enter" && target.tagName === "INPUT") {
        event.preventDefault(); submit();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey) return;
    switch (event.key) {
      case "1": setScore("1"); break;
      case "0": setScore("0"); break;
      case "j": case "ArrowDown": show(current + 1); break;
      case "k": case "ArrowUp": show(current - 1); break;
      case "c": form().querySelector(".js-comment").focus(); break;
      case "l": form().querySelector(".js-labels").focus(); break;
      case "Enter": submit(); break;
      default: return;
    }
    event.preventDefault();
  });

  var fromHash = items.findIndex(function (item) { return "#" + item.id === window.location.hash; });
  show(fromHash >= 0 ? fromHash : 0);
})();
