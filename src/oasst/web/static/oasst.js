// Small enhancements of the pages; everything also works as plain forms. Delegated, so htmx swaps need no re-binding.
(function () {
  "use strict";

  // Selects marked data-autosubmit submit their form on change (language choices).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]")) {
      target.form.requestSubmit();
    }
  });

  // Ranking: keep the hidden "ranking" field in the order of the list (indices of the replies, best first).
  function syncRanking(list) {
    var form = list.closest("form");
    var field = form && form.querySelector("input[data-ranking]");
    if (!field) return;
    var order = Array.prototype.map.call(list.querySelectorAll(".rank-item"), function (item) {
      return item.dataset.index;
    });
    field.value = order.join(",");
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("button[data-move]");
    if (!button) return;
    var item = button.closest(".rank-item");
    var list = item.parentElement;
    if (button.dataset.move === "up" && item.previousElementSibling) {
      list.insertBefore(item, item.previousElementSibling);
    } else if (button.dataset.move === "down" && item.nextElementSibling) {
      list.insertBefore(item.nextElementSibling, item);
    }
    syncRanking(list);
    button.focus();
  });

  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var item = event.target.closest && event.target.closest(".rank-item");
    if (!item) return;
    dragged = item;
    item.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", item.dataset.index);
  });
  document.addEventListener("dragover", function (event) {
    var over = event.target.closest && event.target.closest(".rank-item");
    if (!dragged || !over || over === dragged || over.parentElement !== dragged.parentElement) return;
    event.preventDefault();
    var box = over.getBoundingClientRect();
    var after = event.clientY > box.top + box.height / 2;
    over.parentElement.insertBefore(dragged, after ? over.nextElementSibling : over);
  });
  document.addEventListener("dragend", function () {
    if (!dragged) return;
    dragged.classList.remove("dragging");
    syncRanking(dragged.parentElement);
    dragged = null;
  });

  // Chat: a reply being written streams in through the page's event route; once it ends, the page reloads
  // to show it with its buttons.
  function startStreams(root) {
    root.querySelectorAll("[data-stream]:not([data-started])").forEach(function (text) {
      text.dataset.started = "1";
      var status = text.parentElement.querySelector("[data-queue]");
      var source = new EventSource(text.dataset.stream);
      source.onmessage = function (frame) {
        var event = JSON.parse(frame.data);
        if (event.event_type === "token") {
          text.textContent += event.text;
          if (status) status.textContent = "";
        } else if (event.event_type === "pending" && status) {
          status.textContent = status.dataset.ahead.replace("{ahead}", String(event.queue_position));
        } else if (event.event_type === "message" || event.event_type === "error") {
          source.close();
          window.location.reload();
        }
      };
      source.onerror = function () {
        source.close();
        if (status) status.textContent = status.dataset.lost;
      };
    });
  }
  startStreams(document);
  document.addEventListener("htmx:load", function (event) {
    startStreams(event.detail.elt);
  });
})();
