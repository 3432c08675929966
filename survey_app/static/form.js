// Enhancement only: hide questions whose skip condition fails, as the respondent answers.
(function () {
  var form = document.querySelector("form");
  if (!form) return;
  var conditional = Array.prototype.slice.call(document.querySelectorAll("[data-show-if]"));
  function answerOf(qid) {
    var inputs = form.querySelectorAll('[name="' + qid + '"]');
    if (!inputs.length) return null;  // asked on an earlier page: the server decided
    var values = [];
    inputs.forEach(function (el) {
      if ((el.type === "radio" || el.type === "checkbox") ? el.checked : el.value) values.push(el.value);
    });
    return values;
  }
  function update() {
    conditional.forEach(function (fs) {
      var given = answerOf(fs.dataset.showIf);
      var show;
      if (given === null) { show = !fs.dataset.hiddenInitially; }
      else {
        var wanted = fs.dataset.values.split(" ");
        var hit = given.some(function (v) { return wanted.indexOf(v) >= 0; });
        show = fs.dataset.op === "answered" ? given.length > 0 : (fs.dataset.op === "in" ? hit : !hit);
      }
      fs.classList.toggle("is-hidden", !show);
      var note = fs.querySelector(".cond");
      if (note) note.classList.add("is-hidden");
    });
  }
  form.addEventListener("change", update);
  update();
})();
