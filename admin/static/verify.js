/* The verify page: text selected in a passage becomes the verified answer, with that page as its
 * source. Text is copied as text (never HTML), and only a selection inside one passage counts. */
"use strict";
(function () {
  var list = document.querySelector("ol.selectable");
  var answer = document.getElementById("verify-answer");
  var source = document.getElementById("verify-source");
  if (!list || !answer || !source) return;
  list.addEventListener("mouseup", function () {
    var selection = window.getSelection();
    if (!selection || selection.isCollapsed) return;
    var passage = selection.anchorNode && selection.anchorNode.parentElement &&
      selection.anchorNode.parentElement.closest(".passage-text");
    if (!passage || !passage.contains(selection.focusNode)) return;
    var text = selection.toString().trim();
    if (!text) return;
    answer.value = text;
    source.value = list.getAttribute("data-source-url");
    var none = document.querySelector("input[name=candidate][value='']");
    if (none) none.checked = true;
  });
})();
