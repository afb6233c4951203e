// The CRM UI's only script, loaded from the CRM itself: the Content-Security-Policy allows nothing inline.

// A form with data-confirm asks before it is sent (the Delete button).
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
});

// A link with data-back returns to the previous page when there is one, else follows its href.
document.querySelectorAll("a[data-back]").forEach((link) => {
  link.addEventListener("click", (event) => {
    if (window.history.length > 1) {
      event.preventDefault();
      window.history.back();
    }
  });
});
