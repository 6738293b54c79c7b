// Submits the response form of response_mode=form_post (the page works without it: a button
// is shown instead).
document.querySelectorAll("form[data-auto-submit]").forEach((form) => form.submit());
