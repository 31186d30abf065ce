// The console works without this file; it only adds conveniences.
(function () {
  "use strict";
  // A header checkbox that selects every row's checkbox of the same name.
  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!(box instanceof HTMLInputElement) || !box.dataset.selectAll) return;
    var form = box.form;
    if (!form) return;
    form.querySelectorAll('input[type="checkbox"][name="' + box.dataset.selectAll + '"]')
      .forEach(function (other) { other.checked = box.checked; });
  });
})();
